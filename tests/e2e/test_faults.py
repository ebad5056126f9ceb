"""The local pipeline through two faults: dialer invocations that die mid-batch, and Redis
coming back empty. Nothing is lost or accepted twice, no live-call entry outlives the call it
stands for (a capped campaign does not stall), and every task is dialed soon after the fault."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import pytest
import redis as redis_lib

from dialer_worker import dispatch
from shared.drops import DeferReason
from shared.live_calls import campaign_live_key, fleet_live_key, tag

from .conftest import tasks

pytestmark = pytest.mark.slow

# Above what 30 calls/s keep live (0.2-0.5 s calls, plus three batches' admitted calls waiting for
# their slots, which count from admission): the cap binds only when entries outlive their calls.
CAP = 60
FAULT_S = 12
# While the first tasks are done and most are still waiting (240 tasks take about 8 s).
REDIS_LOST_AT_S = 4
DIALED_WITHIN_S = 60
# Deferral re-sends of one task the faults may cause. `late` ones are judged apart, not counted:
# a call that would have left more than the late tolerance after its slot is deferred because a
# loaded machine woke the dialer's thread late, not because of the fault (how often is the
# benchmarks' business).
MAX_RESENDS = 3


def capped_run(local_run):
    run = local_run(
        campaigns=[("capped", "active", {"maxConcurrentCalls": CAP})],
        max_cps=30,
        dialer_overrides={
            "calling_hours": "00:00-24:00",
            "task_max_age_hours": 0,
            "recipient_daily_limit": 0,
            "max_concurrent_calls": 0,
        },
    )
    run.worker.duration_s = lambda rng: rng.uniform(0.2, 0.5)
    return run


@pytest.fixture
def resends(monkeypatch):
    """Deferral re-sends per task (contactId) and reason, counted where the dialer re-queues them."""
    counted: Counter[tuple[str, DeferReason]] = Counter()
    defer = dispatch.Dispatcher._defer

    def counting(self, to_defer, report):
        counted.update((task.task.contact_id, reason) for task, _, reason in to_defer)
        return defer(self, to_defer, report)

    monkeypatch.setattr(dispatch.Dispatcher, "_defer", counting)
    return counted


def live_in_redis(run, campaign="capped"):
    client = redis_lib.Redis(host=run.redis.host, port=run.redis.port)
    try:
        now_s, now_us = client.time()
        now = f"({int(now_s) * 1_000_000 + int(now_us)}"
        return (
            client.zcount(campaign_live_key(run.key_prefix, campaign), now, "+inf"),
            client.zcount(fleet_live_key(run.key_prefix), now, "+inf"),
        )
    finally:
        client.close()


def settle_and_check(run, summary, resends, cleared, tasks_n=240):
    assert summary.drained and summary.lost == 0 and summary.dialed_twice == 0, summary
    assert summary.dialed == tasks_n and summary.in_dlq == 0, summary
    last = max(c.at_monotonic for c in run.worker.calls if 200 <= c.status < 300)
    assert last - cleared[0] <= DIALED_WITHIN_S, f"last dial {last - cleared[0]:.1f} s after the fault cleared"
    assert run.worker.peak_live["capped"] <= CAP
    by_task: Counter[str] = Counter()
    for (contact, reason), n in resends.items():
        by_task[contact] += 0 if reason is DeferReason.LATE else n
    worst = by_task.most_common(1)
    assert not worst or worst[0][1] <= MAX_RESENDS, (
        worst,
        {str(reason): n for (contact, reason), n in resends.items() if contact == worst[0][0]},
        summary.extra["deferrals_by_reason"],
    )
    # Every call ended and was reported: nothing is left live in Redis.
    deadline = time.monotonic() + 10
    while live_in_redis(run) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_in_redis(run) == (0, 0) and run.worker.live() == 0


def test_invocations_that_die_mid_batch_leave_no_live_call_behind(local_run, resends, monkeypatch):
    run = capped_run(local_run)
    faulty = threading.Event()
    faulty.set()
    invocations = itertools.count()
    dial = dispatch.Dispatcher._dial_at_slots

    def dies_mid_batch(self, to_dial, remaining_ms, report):
        # Every other invocation with calls to make, while the fault lasts, dials the first half
        # of them, then dies: no finish, no deferral, its batch redelivered after the visibility
        # timeout, its admitted calls left in Redis.
        if faulty.is_set() and len(to_dial) > 1 and next(invocations) % 2 == 0:
            dial(self, sorted(to_dial, key=lambda pair: pair[1])[: len(to_dial) // 2], remaining_ms, report)
            raise RuntimeError("the invocation died (test)")
        return dial(self, to_dial, remaining_ms, report)

    monkeypatch.setattr(dispatch.Dispatcher, "_dial_at_slots", dies_mid_batch)
    cleared = [0.0]

    def clear_later(_run):
        time.sleep(FAULT_S)
        faulty.clear()
        cleared[0] = time.monotonic()

    run.enqueue(tasks(240, "capped"))
    summary = run.run(timeout=150, during=clear_later)
    assert summary.extra["target_failed"] >= 2, summary.extra
    settle_and_check(run, summary, resends, cleared)


def test_redis_coming_back_empty_dials_no_accepted_task_again_and_leaves_no_live_call_behind(local_run, resends):
    run = capped_run(local_run)
    cleared = [0.0]

    def lose_every_key(r):
        # Redis restarted empty (a failover that lost writes): this run's keys are gone, claims
        # of calls in flight included; the worker still has them, and answers their re-sends 409.
        time.sleep(REDIS_LOST_AT_S)
        client = redis_lib.Redis(host=r.redis.host, port=r.redis.port)
        try:
            keys = list(client.scan_iter(match=f"{tag(r.key_prefix)}*", count=10_000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        cleared[0] = time.monotonic()
        # Tasks dialed before the loss come again (redelivered, or sent twice by the scheduler).
        r.enqueue(tasks(20, "capped"))

    run.enqueue(tasks(240, "capped"))
    summary = run.run(timeout=150, during=lose_every_key)
    # The dialers held while the ledger put the lost claims back: the re-sent tasks the worker
    # had accepted before the loss are suppressed by their claims, never POSTed again.
    assert sum(1 for c in run.worker.calls if c.status == 409) == 0, "accepted tasks were POSTed again"
    assert summary.duplicates_suppressed >= 20, summary
    assert summary.extra["deferrals_by_reason"].get("restoring", 0) >= 1, summary.extra
    settle_and_check(run, summary, resends, cleared)
