"""Dial-time compliance through the real handlers, PostgreSQL, Redis, the local SQS and pipe:
nothing dialed outside its window, expired or on the do-not-call list, no number called more
often than the daily limit with four executions in flight, and every task accounted for."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from local_pipeline import database
from local_pipeline.demo import demo_zone

from .conftest import GOOD_CONFIG

pytestmark = pytest.mark.slow

SHARED_NUMBER = "+14155550150"


def run_until_only_waiting(run, waiting, timeout):
    """Runs the pipe until the queue holds nothing but `waiting` delayed tasks, twice in a row half
    a second apart (or `timeout`): the run's end, since tasks waiting for a window that opens
    tomorrow are back in one 900 s hop at the soonest."""
    started = time.monotonic()
    pipe = run.pipe().start(run.parallel)
    try:
        quiet = 0
        while quiet < 2 and time.monotonic() - started < timeout:
            time.sleep(0.5)
            settled = run.queues.depth() == {"visible": 0, "in_flight": 0, "delayed": waiting}
            quiet = quiet + 1 if settled else 0
    finally:
        pipe.stop()
    return run.summary(pipe, False, time.monotonic() - started)


def test_windows_expiry_do_not_call_and_the_recipient_limit(local_run):
    now = datetime.now(UTC)
    zone = demo_zone(now)  # a zone where the legal hours are open now
    tomorrow = (now.astimezone(ZoneInfo(zone)) + timedelta(days=1)).strftime("%A").upper()
    closed_today = {**GOOD_CONFIG, "callingWindow": {"openHours": {tomorrow: [["09:00", "17:00"]]}}}
    run = local_run(
        campaigns=[("open", "active"), ("other", "active")],
        max_cps=50,
        parallel=4,
        # The settings' compliance (legal hours, 24 h maximum age, 3 calls per number a day).
        dialer_overrides={},
    )
    database.seed_campaigns(run.dsn, [("closed-today", "active", closed_today)])
    database.add_to_do_not_call(run.dsn, "+14155550140", "test")

    def task(campaign, contact, phone, **extra):
        return {"campaignId": campaign, "contactId": contact, "phoneNumber": phone, "timeZone": zone, **extra}

    dialable = [task("open", f"ok-{i}", f"+1415555{i:04d}") for i in range(20)]
    waiting = [task("closed-today", f"later-{i}", f"+1415556{i:04d}") for i in range(3)]
    expired = [
        task("open", f"old-{i}", f"+1415557{i:04d}", expiresAt=(now - timedelta(minutes=5)).isoformat())
        for i in range(3)
    ]
    listed = [task("open", "listed", "+14155550140")]
    # Ten calls to one number from two campaigns: at most three may go out in 24 h.
    same_number = [task("open" if i % 2 else "other", f"same-{i}", SHARED_NUMBER) for i in range(10)]
    run.enqueue(dialable + waiting + expired + listed + same_number)

    summary = run_until_only_waiting(run, waiting=len(waiting), timeout=25)

    calls = run.worker.accepted()
    dialed = Counter(c.body["contactId"].rsplit("-", 1)[0] for c in calls)
    assert dialed == {"ok": 20, "same": 3}, dialed
    assert Counter(c.body["phoneNumber"] for c in calls)[SHARED_NUMBER] == 3
    assert summary.dropped_by_reason == {"expired": 3, "do_not_call": 1, "recipient_limit": 7}
    assert summary.dialed_twice == 0 and summary.in_dlq == 0
    # The closed campaign's tasks wait in the queue (delayed, a 900 s hop at most): not dialed,
    # not failed, not dead-lettered; they are the only ones not yet ended.
    assert run.queues.depth()["delayed"] == 3 and summary.waiting == 3 and summary.lost == 0, summary
    assert summary.deferred >= 3
