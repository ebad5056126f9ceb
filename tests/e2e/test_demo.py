"""`python -m local_pipeline --json`, as `make local` runs it: a small document that parses, with
the summary's explanations and without the per-second series unless asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_pipeline import demo_report

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# The summary's figures; the series it used to carry ran to thousands of lines.
MAX_JSON_BYTES = 8_000


def test_the_json_summary_is_small_parses_and_explains_the_caps(tmp_path, postgres_server, fresh_database):
    # On this test's PostgreSQL, in a database of its own: the demo's own (dialpipe_local) is
    # seeded and has its ledger emptied by any other demo run at the same time.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)]),
        "DB_HOST": postgres_server.host,
        "DB_PORT": str(postgres_server.port),
        "DB_USER": postgres_server.user,
        "DB_PASSWORD": postgres_server.password,
    }
    chart = tmp_path / "chart.png"
    # The opens-soon campaign's window opens 5 s in, not the demo's minute: the run is not kept
    # waiting for it.
    done = subprocess.run(
        [sys.executable, "-m", "local_pipeline", "--json", "--tasks", "20", "--chart", str(chart), "--timeout", "240",
         "--opens-in", "5", "--database", fresh_database],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=290,
    )  # fmt: skip
    assert len(done.stdout.encode()) < MAX_JSON_BYTES, done.stdout[-2000:]
    summary = json.loads(done.stdout)  # nothing else on stdout: the handlers log to their file
    assert done.returncode == 0, (summary, done.stderr[-2000:])
    assert not set(demo_report.SERIES) & set(summary["extra"])
    assert summary["peak_rolling_second"] <= summary["max_cps"]
    caps = summary["extra"]["caps"]
    assert {c["campaign"] for c in caps["capped"]} == {"renewals", "low-answer"}
    assert (
        caps["capped_tasks"] == summary["dialed_by_campaign"]["renewals"] + summary["dialed_by_campaign"]["low-answer"]
    )
    due = summary["extra"]["achieved_while_due"]
    assert 0 < due["due_s"] <= due["span_s"]
    # The opens-soon task went out once, and not before its window opened (whether it was deferred
    # depends on how long this machine took to start the run).
    assert summary["dialed_by_campaign"].get("opens-soon") == 1, summary["dialed_by_campaign"]
    assert summary["extra"]["opens_soon_dialed_after_s"] >= 5 - 0.1, summary["extra"]
    assert chart.stat().st_size > 0
