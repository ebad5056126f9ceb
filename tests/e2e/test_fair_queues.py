"""Fairness between campaigns end to end: the local pipe, the real handlers, PostgreSQL, Redis, the
local SQS (fair receives, MessageGroupId = campaignId) and an HTTP worker."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from support.arrivals import most_per_second

from local_pipeline.worker_standin import rolling_window_max

from .conftest import tasks

pytestmark = pytest.mark.slow


def test_a_small_campaign_behind_a_big_backlog_is_dialed_within_30_s(local_run):
    # First in, first out, the 20 small tasks would wait for the 2,000 before them: 100 s at 20 CPS.
    run = local_run(campaigns=[("big", "active"), ("small", "active")], max_cps=20, visibility_timeout_seconds=30)
    run.enqueue(tasks(2000, campaign="big"))
    pipe = run.pipe().start(run.parallel)
    try:
        deadline = time.monotonic() + 10
        while not run.worker.accepted() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.worker.accepted(), "the big campaign never started dialing"
        enqueued_at = time.monotonic()
        run.enqueue(tasks(20, campaign="small"))
        # Stops once the small campaign is done: the big backlog is not this test's business.
        while time.monotonic() < enqueued_at + 35:
            if len({c.body["contactId"] for c in run.worker.accepted() if c.body["campaignId"] == "small"}) == 20:
                break
            time.sleep(0.2)
    finally:
        pipe.stop()
    accepted = run.worker.accepted()
    small = [c.at_monotonic - enqueued_at for c in accepted if c.body["campaignId"] == "small"]
    assert len(small) == 20 and max(small) <= 30, sorted(small)
    assert rolling_window_max([c.at_monotonic for c in accepted]) <= most_per_second(20)
    assert max(Counter(c.body["callId"] for c in accepted).values()) == 1
