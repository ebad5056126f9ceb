"""The admission script against real Redis, judged on the schedule it hands out (each DIAL's slot
is the script's clock plus its wait_us), so these checks see no HTTP or scheduling jitter."""

from __future__ import annotations

import math
import random

import pytest
import redis

from dialer_worker.admission import SLACK, AdmissionRequest, Decision, RedisPacer
from local_pipeline.worker_standin import rolling_window_max

MAX_CPS = 20


@pytest.fixture
def pacer(redis_server, redis_key_prefix):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    yield RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=600)
    client.close()


def mixed_stream(pacer, *, batches: int, capped_share: float = 0.1, capped_cps: float = 5):
    """Reserves `batches` batches of 10 (a share from a campaign capped at `capped_cps`), as
    concurrent dialers would one after another. Returns [(slot seconds, campaign)] of every DIAL.

    The script's clock at each call, exactly: each batch ends with an uncapped task, whose slot is
    the stored global `tat` minus one interval, and that slot is the clock plus its wait_us."""
    interval_us = math.ceil((1 + SLACK) * 1_000_000 / MAX_CPS)
    rng = random.Random(5)
    slots = []
    for b in range(batches):
        tasks = []
        for i in range(10):
            capped = rng.random() < capped_share and i < 9
            tasks.append(
                AdmissionRequest(f"call-{b}-{i}", "capped" if capped else "open", capped_cps if capped else None)
            )
        reservation = pacer.reserve(tasks, max_cps=MAX_CPS, max_wait_ms=60_000, lease_ms=70_000)
        assert all(a.decision is Decision.DIAL for a in reservation.admissions)
        tat_us = int(pacer.redis.get(pacer.keys.tat))
        now_us = tat_us - interval_us - reservation.admissions[-1].wait_us
        slots += [
            ((now_us + a.wait_us) / 1_000_000, task.campaign_id)
            for task, a in zip(tasks, reservation.admissions, strict=False)
        ]
    return sorted(slots)


@pytest.mark.parametrize("capped_share", [0.1, 0.3])  # the capped campaign under its cap on average, and over it
def test_a_mixed_stream_keeps_the_global_rate_full_and_every_cap(pacer, capped_share):
    slots = mixed_stream(pacer, batches=30, capped_share=capped_share)
    times = [t for t, _ in slots]
    capped = [t for t, c in slots if c == "capped"]
    assert len(capped) >= 20, "the stream must hold capped tasks"
    assert rolling_window_max(times) <= MAX_CPS
    assert rolling_window_max(capped) <= 5
    # Capped tasks waiting for their own slots leave no hole that uncapped ones do not fill, so the
    # schedule runs at the pacing's own rate, MAX_CPS / (1 + SLACK): 97.6% of MAX_CPS.
    # (Up to the last uncapped slot: after it only the capped campaign is left, at its own cap.)
    last_open = max(t for t, c in slots if c == "open")
    busy = [t for t in times if t <= last_open]
    rate = (len(busy) - 1) / (busy[-1] - busy[0])
    assert rate >= 0.97 * MAX_CPS, f"{rate:.2f} CPS scheduled"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= (1 + SLACK) / MAX_CPS - 1e-6, min(gaps)


def test_a_capped_task_does_not_push_the_uncapped_ones_behind_it(pacer):
    # A campaign capped at 1 CPS takes three slots about 1 s apart, then come uncapped tasks:
    # they take the global slots in between instead of queueing after the capped campaign's.
    first = pacer.reserve(
        [AdmissionRequest(f"c-{i}", "capped", 1) for i in range(3)],
        max_cps=MAX_CPS,
        max_wait_ms=10_000,
        lease_ms=20_000,
    )
    assert [a.decision for a in first.admissions] == [Decision.DIAL] * 3
    assert [a.wait_us / 1e6 for a in first.admissions] == pytest.approx([0, 1 + SLACK, 2 * (1 + SLACK)], abs=0.001)
    then = pacer.reserve(
        [AdmissionRequest(f"o-{i}", "open") for i in range(10)], max_cps=MAX_CPS, max_wait_ms=10_000, lease_ms=20_000
    )
    waits = [a.wait_us / 1e6 for a in then.admissions]
    assert max(waits) < 0.6, waits  # ten slots, one interval apart, right after the first capped one


def test_every_wait_is_in_microseconds(pacer, redis_key_prefix):
    # At 1 CPS the second task's slot is (1 + SLACK) s away: beyond max_wait, so deferred that long.
    reply = pacer.reserve(
        [AdmissionRequest("a", "c"), AdmissionRequest("b", "c")], max_cps=1, max_wait_ms=0, lease_ms=20_000
    )
    dial, defer = reply.admissions
    assert dial.decision is Decision.DIAL and dial.wait_us == 0
    assert defer.decision is Decision.DEFER and 1_000_000 <= defer.wait_us <= (1 + SLACK) * 1_000_000 + 1
    # "a" is claimed for its lease (20 s): a redelivery meanwhile waits for the lease to end.
    [again] = pacer.reserve([AdmissionRequest("a", "c")], max_cps=1, max_wait_ms=0, lease_ms=20_000).admissions
    assert again.decision is Decision.IN_FLIGHT and 19_000_000 <= again.wait_us <= 20_000_000
    # A capped task beyond max_wait is deferred until its campaign slot, in microseconds too.
    pacer = RedisPacer(pacer.redis, prefix=f"{redis_key_prefix}-capped", claim_ttl_seconds=600)
    reply = pacer.reserve(
        [AdmissionRequest("x", "slow", 0.5), AdmissionRequest("y", "slow", 0.5)],
        max_cps=100,
        max_wait_ms=1000,
        lease_ms=20_000,
    )
    assert [a.decision for a in reply.admissions] == [Decision.DIAL, Decision.DEFER]
    assert 2_000_000 <= reply.admissions[1].wait_us <= 2 * (1 + SLACK) * 1_000_000 + 20_000


def test_a_spread_batch_leaves_the_slots_between_its_own_to_other_batches(redis_server, redis_key_prefix):
    # A container at a small CPU share spreads its batch's calls (spread_us); the global slots in
    # between go to the next batches, so the fleet's schedule stays full and never crowded.
    interval_us = math.ceil((1 + SLACK) * 1_000_000 / MAX_CPS)
    spread_us = 3 * interval_us - 1000  # on the grid: three intervals
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    spreading = RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=600, spread_us=spread_us)
    plain = RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=600)
    try:
        batches = [
            pacer.reserve(
                [AdmissionRequest(f"{name}-{i}", "open") for i in range(5)],
                max_cps=MAX_CPS,
                max_wait_ms=60_000,
                lease_ms=70_000,
            )
            for name, pacer in (("a", spreading), ("b", spreading), ("c", plain))
        ]
    finally:
        client.close()
    own = [[a.slot_us for a in r.admissions] for r in batches]
    assert all(a.decision is Decision.DIAL for r in batches for a in r.admissions)
    for slots in own[:2]:
        assert min(b - a for a, b in zip(slots, slots[1:], strict=False)) >= spread_us
    fleet = sorted(s for slots in own for s in slots if s is not None)
    assert min(b - a for a, b in zip(fleet, fleet[1:], strict=False)) >= interval_us
    # Full: 15 slots one interval apart, give or take the time between the three script calls.
    took_us = batches[-1].now_us - batches[0].now_us
    assert fleet[-1] - fleet[0] <= 14 * interval_us + took_us
