"""Admission's entries last only as long as the call they stand for, on real Redis: what an
invocation admitted but never settled (it died) is gone with its lease; `finish` keeps what the
worker carries for a call's lease, and a 409 leaves no entry of its own behind."""

from __future__ import annotations

import time

import pytest
import redis

from dialer_worker.admission import AdmissionRequest, Decision, RedisPacer, Settled

LEASE_MS = 600


@pytest.fixture
def pacer(redis_server, redis_key_prefix):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    yield RedisPacer(
        client, prefix=redis_key_prefix, claim_ttl_seconds=600, recipient_daily_limit=1, max_call_seconds=900
    )
    client.close()


def ask(pacer, call_id, *, recipient="r-1", cap=5, lease_ms=LEASE_MS):
    request = AdmissionRequest(call_id, "c", recipient=recipient, campaign_max_live=cap)
    [admission] = pacer.reserve([request], max_cps=100, max_wait_ms=5000, lease_ms=lease_ms).admissions
    return admission


def past_the_lease():
    time.sleep(LEASE_MS / 1000 + 0.3)  # slots are at most 10 ms ahead at 100 calls/s


def test_an_invocation_that_dies_after_admission_leaves_nothing_past_its_lease(pacer):
    assert ask(pacer, "a").decision is Decision.DIAL
    assert pacer.live_calls("c") == pacer.live_calls() == 1
    assert ask(pacer, "b").decision is Decision.RECIPIENT_LIMIT  # the number's count, for now
    past_the_lease()  # no finish: the invocation died
    assert pacer.live_calls("c") == pacer.live_calls() == 0
    # Its claim and its count against the number are gone too: the redelivery, or another call
    # to the number, is admitted.
    assert ask(pacer, "b").decision is Decision.DIAL


def test_a_call_the_worker_took_stays_live_and_counted_past_the_invocations_lease(pacer):
    admission = ask(pacer, "a")
    pacer.finish(Settled(accepted=["a"], carried={"a": ("c", -1)}, recipients={"a": "r-1"}), successes=0, max_cps=100)
    past_the_lease()
    assert pacer.live_calls("c") == pacer.live_calls() == 1
    assert ask(pacer, "b").decision is Decision.RECIPIENT_LIMIT
    assert ask(pacer, "a").decision is Decision.DUPLICATE
    assert admission.lease_end_us is not None


def test_a_409_for_a_call_whose_entry_is_gone_leaves_no_entry(pacer):
    # Redis lost the first attempt's claim and entry (or its call ended): the re-send is admitted
    # afresh, and the worker answers 409.
    admission = ask(pacer, "a", recipient="r-2")
    pacer.finish(
        Settled(accepted=["a"], repeated={"a": ("c", admission.lease_end_us)}, recipients={"a": "r-2"}),
        successes=0,
        max_cps=100,
    )
    assert pacer.live_calls("c") == pacer.live_calls() == 0
    assert ask(pacer, "a").decision is Decision.DUPLICATE


def test_a_409_for_a_call_still_counted_from_an_earlier_attempt_keeps_that_entry(pacer):
    ask(pacer, "a", recipient=None)
    # The first attempt got no answer: kept live, its claim left to its lease.
    pacer.finish(Settled(carried={"a": ("c", -1)}), successes=0, max_cps=100)
    past_the_lease()
    again = ask(pacer, "a", recipient=None)
    assert again.decision is Decision.DIAL and pacer.live_calls("c") == 1
    pacer.finish(Settled(accepted=["a"], repeated={"a": ("c", again.lease_end_us)}), successes=0, max_cps=100)
    past_the_lease()
    # Still the one call the worker may be carrying, for a call's lease from the first attempt.
    assert pacer.live_calls("c") == pacer.live_calls() == 1


def test_a_call_event_before_finish_is_not_undone(pacer):
    ask(pacer, "a", recipient="r-4")
    key, fleet = pacer.keys.live("c"), pacer.keys.fleet_live
    pacer.redis.zrem(key, "a")
    pacer.redis.zrem(fleet, "a")  # what the call-events script does for a call that ended at once
    pacer.finish(Settled(accepted=["a"], carried={"a": ("c", -1)}), successes=0, max_cps=100)
    assert pacer.live_calls("c") == pacer.live_calls() == 0


def test_an_unsettled_batchs_calls_stay_live_until_its_last_slot_has_settled(pacer):
    requests = [AdmissionRequest(f"s{i}", "c", recipient=f"rs-{i}", campaign_max_live=10) for i in range(5)]
    # 10 calls/s: slots about 0.1 s apart, the last about 0.41 s ahead.
    reservation = pacer.reserve(requests, max_cps=10, max_wait_ms=5000, lease_ms=5000, settle_ms=300)
    assert all(a.decision is Decision.DIAL for a in reservation.admissions)
    assert len({a.lease_end_us for a in reservation.admissions}) == 1
    time.sleep(0.55)  # past the first slot + 300 ms, not the last's
    assert pacer.live_calls("c") == 5
    time.sleep(0.5)  # past the last slot + 300 ms: the invocation died, nothing is live
    assert pacer.live_calls("c") == 0
    # Its claims keep their lease: a redelivery waits for it (in flight), never dials twice.
    [again] = pacer.reserve(requests[:1], max_cps=10, max_wait_ms=5000, lease_ms=5000).admissions
    assert again.decision is Decision.IN_FLIGHT
