"""Two local pipelines in one process at once, with different settings: each run's functions have
their own environment, clients and reports, so each summary counts its own tasks only."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest

from local_pipeline import database

from .conftest import tasks

pytestmark = pytest.mark.slow


def test_two_runs_side_by_side_each_count_only_their_own_tasks(local_run, postgres_server):
    # Different databases, rates, caches and pacing: a run reading the other's settings would drop
    # its tasks as unknown campaigns, dial at the other's worker, or count the other's drops.
    run_a = local_run(campaigns=[("alpha", "active")], max_cps=40)
    other_db = f"test_{uuid.uuid4().hex[:12]}"
    try:
        run_b = local_run(
            campaigns=[("beta", "active"), ("beta-stopped", "stopped")],
            dbname=other_db,
            max_cps=25,
            cache_ttl_seconds=0,
            call_events_overrides={"answer_rate_cool_down_seconds": 5},
        )
        run_a.enqueue(tasks(30, "alpha"))
        run_b.enqueue(
            tasks(12, "beta")
            + [
                {"campaignId": "beta-stopped", "contactId": "s", "phoneNumber": "+14155550001"},
                {"campaignId": "beta", "contactId": "bad", "phoneNumber": "12345"},
            ]
        )
        summaries: dict[str, object] = {}

        def drive(name, run):
            summaries[name] = run.run(timeout=120)

        threads = [threading.Thread(target=drive, args=item) for item in (("a", run_a), ("b", run_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert not any(thread.is_alive() for thread in threads), "a run did not finish within its timeout"

        a, b = summaries["a"], summaries["b"]
        for summary in (a, b):
            assert summary.drained and summary.lost == 0 and summary.dialed_twice == 0, summary
            assert summary.in_dlq == 0, summary
        assert (a.enqueued, a.dialed, a.dropped_by_reason) == (30, 30, {}), a
        assert (b.enqueued, b.dialed) == (14, 12), b
        assert b.dropped_by_reason == {"campaign_inactive": 1, "invalid_phone_number": 1}, b
        assert (a.max_cps, b.max_cps) == (40, 25)
        # Each worker stand-in saw its own run's campaign only.
        assert Counter(c.body["campaignId"] for c in run_a.worker.accepted()) == {"alpha": 30}
        assert Counter(c.body["campaignId"] for c in run_b.worker.accepted()) == {"beta": 12}
        assert run_a.functions.dialer_env.key_prefix != run_b.functions.dialer_env.key_prefix
    finally:
        database.drop(postgres_server, other_db)  # the fixture closes both runs
