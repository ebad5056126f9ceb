"""A reader that goes away (`dialctl ... | head -3`) ends dialctl quietly with 141 (128 + SIGPIPE),
never a traceback. The read end is closed before dialctl writes, so every write meets a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)])}


def run_with_closed_stdout(*argv: str) -> tuple[int, str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "dialctl", *argv], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read()
    return child.wait(timeout=60), err


@pytest.mark.parametrize("lines", [3, 5000], ids=["short output", "more than a pipe buffer"])
def test_enqueue_into_a_closed_pipe_exits_141_without_a_traceback(tmp_path, lines):
    path = tmp_path / "contacts.jsonl"
    path.write_text("".join(json.dumps({"campaignId": " ", "contactId": f"c{i}"}) + "\n" for i in range(lines)))
    code, err = run_with_closed_stdout("enqueue", str(path), "--dry-run", "--processes", "1")
    assert (code, err) == (141, "")


def test_help_into_a_closed_pipe_ends_without_a_traceback():
    code, err = run_with_closed_stdout("status", "--help")
    assert code in (0, 141) and err == ""  # argparse itself ignores the failed write: 0
