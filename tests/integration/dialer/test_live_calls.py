"""Live calls and the pace factor on real Redis, through the dialer's one script call per batch:
the campaign and fleet caps hold under concurrent dialers, a lease ends a live call, calls that
did not go out free their slot, a paused campaign takes nothing, a slowed campaign is paced."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from call_events.events import CallEvent
from call_events.loop import CallLoop
from dialer_worker.admission import AdmissionRequest, Decision, RedisPacer, Settled
from dialer_worker.dispatch import LIVE_CALLS_DEFER_MS, PAUSED_DEFER_MS
from shared.dial_task import call_id_for

from .conftest import Remaining, item


def capped(n, campaign, cap):
    return item(n, campaign=campaign, config={"maxConcurrentCalls": cap})


def run_concurrently(dispatchers, batches):
    reports, errors = [], []

    def invoke(d, batch):
        try:
            reports.append(d.run(batch, Remaining(15)))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=invoke, args=pair) for pair in zip(dispatchers, batches, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return reports


def end_calls(client, prefix, calls):
    loop = CallLoop(client, prefix=prefix, window=50, min_samples=20, cool_down_seconds=30)
    loop.record([CallEvent(f"e-{c['callId']}", c["callId"], c["campaignId"], "answered", None) for c in calls])


# With the late check off: a call deferred as late frees its slot, which a concurrent dialer may
# then fill, and the exact counts below would depend on the machine's load.
def test_concurrent_dialers_never_exceed_a_campaigns_live_cap(
    make_dispatcher, worker, redis_key_prefix, late_check_off
):
    dispatchers = [make_dispatcher(max_cps=100) for _ in range(4)]
    batches = [[capped(k * 10 + i, "capped", 5) for i in range(10)] for k in range(4)]
    reports = run_concurrently(dispatchers, batches)
    assert len(worker.accepted()) == 5
    assert sum(r.deferrals["live_calls"] for r in reports) == 35
    assert all(r.failures == [] for r in reports)
    pacer = dispatchers[0].pacer
    assert pacer.live_calls("capped") == pacer.live_calls() == len(worker.accepted())
    # Deferred tasks took no claim: after two calls end, two more of them go out.
    end_calls(dispatchers[0].redis, redis_key_prefix, [c.body for c in worker.accepted()[:2]])
    dialed = {c.body["callId"] for c in worker.accepted()}
    never_dialed = [
        task
        for task in (capped(k * 10 + i, "capped", 5) for k in range(4) for i in range(10))
        if call_id_for(task["task"]["campaignId"], task["task"]["contactId"], task["task"]["attempts"]) not in dialed
    ]
    again = dispatchers[1].run(never_dialed[:10], Remaining(15))
    assert again.counts["DialsSent"] == 2 and again.deferrals["live_calls"] == 8
    assert pacer.live_calls("capped") == 5


def test_concurrent_dialers_never_exceed_the_fleet_cap(make_dispatcher, worker, late_check_off):
    dispatchers = [make_dispatcher(max_cps=100, max_concurrent_calls=7) for _ in range(4)]
    # Four campaigns without a cap of their own: the fleet's cap alone holds them.
    reports = run_concurrently(dispatchers, [[item(k * 10 + i, campaign=f"c-{k}") for i in range(5)] for k in range(4)])
    assert len(worker.accepted()) == 7
    assert sum(r.deferrals["live_calls"] for r in reports) == 13
    assert dispatchers[0].pacer.live_calls() == len(worker.accepted())


def test_a_refused_task_takes_nothing_from_earlier_gates(make_dispatcher, worker, late_check_off):
    d = make_dispatcher(max_cps=100, recipient_limit=1)
    first = d.run([capped(1, "one", 1)], Remaining(15))
    assert first.counts["DialsSent"] == 1
    # Refused by the live cap: no claim and no count against its number.
    second = d.run([capped(2, "one", 1)], Remaining(15))
    assert second.deferrals["live_calls"] == 1
    assert d.redis.get(d.pacer.keys.claim(second_call_id := capped_call_id(2, "one"))) is None, second_call_id
    other = d.run([capped(2, "two", 1)], Remaining(15))
    assert other.counts["DialsSent"] == 1, "the number the refused task would have called was not counted"


def capped_call_id(n, campaign):
    from support.items import enriched_task

    return enriched_task(n, campaign).call_id


def test_a_lease_ends_a_live_call_whose_event_never_comes(redis_server, redis_key_prefix):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    pacer = RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=600, max_call_seconds=1)
    tasks = [AdmissionRequest("a", "c", campaign_max_live=1), AdmissionRequest("b", "c", campaign_max_live=1)]
    first = pacer.reserve(tasks, max_cps=100, max_wait_ms=5000, lease_ms=5000)
    assert [a.decision for a in first.admissions] == [Decision.DIAL, Decision.LIVE_CALLS]
    # The worker took it: live for a call's lease (1 s here) from its slot, not the invocation's 5 s.
    slot = first.admissions[0].slot_us
    pacer.finish(Settled(accepted=["a"], carried={"a": ("c", slot)}), successes=0, max_cps=100)
    time.sleep(1.3)
    assert pacer.live_calls("c") == 0
    [later] = pacer.reserve(
        [AdmissionRequest("b", "c", campaign_max_live=1)], max_cps=100, max_wait_ms=5000, lease_ms=5000
    ).admissions
    assert later.decision is Decision.DIAL
    client.close()


@pytest.mark.parametrize("status", [503, 429, 400])
def test_a_call_that_did_not_go_out_frees_its_slot(make_dispatcher, worker, status, late_check_off):
    d = make_dispatcher(max_cps=100)
    worker.script(status)
    first = d.run([capped(1, "one", 1)], Remaining(15))
    assert first.counts["DialsSent"] == 0
    assert d.pacer.live_calls("one") == 0 and d.pacer.live_calls() == 0
    second = d.run([capped(2, "one", 1)], Remaining(15))
    assert second.counts["DialsSent"] == 1 and d.pacer.live_calls("one") == 1


def test_a_paused_campaigns_task_is_deferred_without_a_claim(make_dispatcher, worker, late_check_off):
    d = make_dispatcher()
    report = d.run([item(1, campaign="p", status="paused")], Remaining(15))
    assert report.deferrals == {"paused": 1} and report.failures == [] and worker.calls == []
    assert d.redis.get(d.pacer.keys.claim(capped_call_id(1, "p"))) is None
    # Active again: the same task is dialed.
    assert d.run([item(1, campaign="p")], Remaining(15)).counts["DialsSent"] == 1
    assert PAUSED_DEFER_MS <= 60_000 and LIVE_CALLS_DEFER_MS <= 30_000


def test_without_a_defer_queue_a_live_calls_deferral_is_a_batch_item_failure(make_dispatcher, worker, late_check_off):
    d = make_dispatcher(queue=None)
    d.run([capped(1, "one", 1)], Remaining(15))
    report = d.run([capped(2, "one", 1)], Remaining(15))
    assert report.failures == [item(2, campaign="one")["messageId"]]


def test_a_slowed_campaign_is_paced_at_its_factor_in_the_same_script_call(redis_server, redis_key_prefix):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    pacer = RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=600)
    client.hset(pacer.keys.pace("slow"), "factor", "0.5")
    tasks = [AdmissionRequest(f"s-{i}", "slow", 10, min_answer_rate=0.5) for i in range(5)]
    tasks += [AdmissionRequest(f"o-{i}", "open") for i in range(5)]
    before = pacer.round_trips
    reservation = pacer.reserve(tasks, max_cps=100, max_wait_ms=10_000, lease_ms=20_000)
    assert pacer.round_trips == before + 1
    slow = sorted(a.wait_us for a, t in zip(reservation.admissions, tasks, strict=True) if t.campaign_id == "slow")
    gaps = [b - a for a, b in zip(slow, slow[1:], strict=False)]
    assert min(gaps) >= 1_000_000 / 5, "maxCps 10 at factor 0.5: at most 5 calls/s"
    # The dialer recorded the campaign's minAnswerRate for the call-events handler.
    assert client.hget(pacer.keys.pace("slow"), "min_rate") == b"0.5"
    # No minAnswerRate and no maxCps, factor 0.2: MAX_CPS times 0.2.
    client.hset(pacer.keys.pace("open2"), "factor", "0.2")
    r2 = pacer.reserve(
        [AdmissionRequest(f"p-{i}", "open2") for i in range(3)], max_cps=50, max_wait_ms=10_000, lease_ms=20_000
    )
    waits = sorted(a.wait_us for a in r2.admissions)
    assert min(b - a for a, b in zip(waits, waits[1:], strict=False)) >= 1_000_000 / 10
    client.close()
