"""The dialer's batch logic (Dispatcher) with in-memory parts: what is dialed, deferred, dropped,
retried, and what happens to each claim. Real Redis and HTTP are in tests/integration/dialer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.env import dialer_env
from support.fakes import FakeClock, FakeDeferrer, FakePacer, FakeWorker
from support.items import enriched_task, item

from dialer_worker.admission import LATE_TOLERANCE_S, Admission, Decision
from dialer_worker.dispatch import Dispatcher
from dialer_worker.env import LATE_CHECK_OFF

ENV = dialer_env()


def dispatcher_with(env, **options):
    """A Dispatcher on in-memory parts; returns it with them."""
    clock = FakeClock()
    pacer, worker, deferrer = FakePacer(), FakeWorker(), FakeDeferrer()
    dispatcher = Dispatcher(
        config=env,
        pacer=pacer,
        worker=worker,
        deferrer=deferrer,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )
    return dispatcher, pacer, worker, deferrer, clock


@pytest.fixture
def parts():
    return dispatcher_with(ENV)


def remaining(seconds=15.0):
    return lambda: int(seconds * 1000)


def test_each_task_is_dialed_at_its_slot_and_its_claim_accepted(parts):
    dispatcher, pacer, worker, _, clock = parts
    pacer.scripted = [[Admission(Decision.DIAL, 0), Admission(Decision.DIAL, 20_000), Admission(Decision.DIAL, 40_000)]]
    start = clock.now
    report = dispatcher.run([item(i) for i in range(3)], remaining())
    assert report.counts["DialsSent"] == 3 and report.failures == []
    assert [c["contactId"] for c in worker.commands] == ["k-0", "k-1", "k-2"]
    assert clock.now - start == pytest.approx(0.040)  # slept until the last slot, 40 ms in
    assert pacer.finished[0]["accepted"] == [enriched_task(i).call_id for i in range(3)]


def test_a_claimed_call_is_suppressed_and_an_in_flight_one_deferred_until_its_lease_ends(parts):
    dispatcher, pacer, worker, deferrer, _ = parts
    pacer.scripted = [[Admission(Decision.DUPLICATE, 0), Admission(Decision.IN_FLIGHT, 7_000_000)]]
    report = dispatcher.run([item(1), item(2)], remaining())
    assert worker.commands == []
    assert report.counts["DuplicateSuppressed"] == 1 and report.counts["Deferred"] == 1
    assert deferrer.deferred == [(item(2)["messageId"], 7000)]


def test_waits_from_the_script_are_microseconds_all_the_way_to_the_delay(parts):
    """A slot 20 s away is deferred by 20 s, not 20 ms (or 1 s, the floor)."""
    dispatcher, pacer, _, deferrer, _ = parts
    pacer.scripted = [[Admission(Decision.DEFER, 20_000_000)]]
    dispatcher.run([item(1)], remaining())
    assert deferrer.deferred == [(item(1)["messageId"], 20_000)]


def test_a_task_that_cannot_be_requeued_is_retried_and_counted(parts):
    dispatcher, pacer, _, deferrer, _ = parts
    deferrer.failing = {item(1)["messageId"]}
    pacer.scripted = [[Admission(Decision.DEFER, 5_000_000), Admission(Decision.DEFER, 5_000_000)]]
    report = dispatcher.run([item(1), item(2)], remaining())
    assert report.failures == [item(1)["messageId"]]
    assert report.defer_failures == [(item(1)["messageId"], "fake_failure")]
    assert report.counts["DeferFailed"] == 1 and report.counts["Deferred"] == 1


@pytest.mark.parametrize(
    "status, sent, failed, accepted, released, drop",
    [
        (202, 1, 0, True, False, None),
        (409, 1, 0, True, False, None),  # an earlier attempt got through
        (400, 0, 0, True, False, ("worker_rejected", "400")),  # kept claimed: never dial it again
        (429, 0, 1, False, True, None),  # not taken: the retry may dial
        (500, 0, 1, False, True, None),
        (None, 0, 1, False, False, None),  # no answer: the claim waits for its lease
    ],
)
def test_what_each_worker_reply_does_to_the_task_and_its_claim(parts, status, sent, failed, accepted, released, drop):
    dispatcher, pacer, worker, _, _ = parts
    worker.statuses = [status]
    report = dispatcher.run([item(1)], remaining())
    call_id = enriched_task(1).call_id
    assert (report.counts["DialsSent"], len(report.failures)) == (sent, failed)
    [finished] = pacer.finished
    assert (call_id in finished["accepted"], call_id in finished["released"]) == (accepted, released)
    assert [(d.reason, d.detail) for d in report.drops] == ([drop] if drop else [])
    assert pacer.slowed_down == (1 if status == 429 else 0)


def test_a_call_that_would_leave_late_goes_back_to_the_queue_and_releases_its_claim(parts):
    dispatcher, pacer, worker, deferrer, clock = parts
    # The connection takes so long to be ready that the call would leave past its tolerance.
    worker.before_send = lambda: clock.sleep(LATE_TOLERANCE_S * 2)
    report = dispatcher.run([item(1)], remaining())
    assert worker.commands == [] and report.counts["Deferred"] == 1
    assert pacer.finished[0]["released"] == [enriched_task(1).call_id]
    assert deferrer.deferred == [(item(1)["messageId"], 1000)]


def test_with_the_late_check_off_the_same_call_leaves():
    dispatcher, pacer, worker, deferrer, clock = dispatcher_with(dialer_env(**LATE_CHECK_OFF))
    worker.before_send = lambda: clock.sleep(LATE_TOLERANCE_S * 2)
    report = dispatcher.run([item(1)], remaining())
    assert len(worker.commands) == 1 and report.counts["DialsSent"] == 1 and deferrer.deferred == []


def slow_reply(clock, pacer, *, wall_offset_s, reply_s):
    """The script runs at the clock's now (wall = monotonic + wall_offset_s); its reply takes reply_s."""
    pacer.script_now_us = lambda: int((clock.now + wall_offset_s) * 1_000_000)
    pacer.answering = lambda: clock.sleep(reply_s)


def test_slots_count_from_when_the_script_ran_so_a_slow_reply_makes_calls_late_not_crowded():
    clock = FakeClock()
    offset = 1_700_000_000.0
    dispatcher, pacer, worker, deferrer, clock = dispatcher_with(
        ENV, wall_clock=lambda: datetime.fromtimestamp(clock.now + offset, UTC)
    )
    slow_reply(clock, pacer, wall_offset_s=offset, reply_s=0.05)
    # Slot 1 was due 50 ms ago when the reply was read: late. Slot 2 is 20 ms after the reply.
    pacer.scripted = [[Admission(Decision.DIAL, 0), Admission(Decision.DIAL, 70_000)]]
    report = dispatcher.run([item(1), item(2)], remaining())
    assert [c["callId"] for c in worker.commands] == [enriched_task(2).call_id]
    assert report.deferrals == {"late": 1}
    assert report.pacing_delay_ms == [0.0, pytest.approx(20.0, abs=0.01)]


@pytest.mark.parametrize("wall_offset_s", [-5.0, 5.0])
def test_a_wall_clock_off_from_redis_puts_the_slots_within_the_round_trip(wall_offset_s):
    clock = FakeClock()
    dispatcher, pacer, worker, _, clock = dispatcher_with(
        ENV, wall_clock=lambda: datetime.fromtimestamp(clock.now + 1_700_000_000.0, UTC)
    )
    asked = clock.now
    slow_reply(clock, pacer, wall_offset_s=1_700_000_000.0 + wall_offset_s, reply_s=0.05)
    pacer.scripted = [[Admission(Decision.DIAL, 100_000)]]
    report = dispatcher.run([item(1)], remaining())
    # Redis's clock behind: counted from the asking (sent 50 ms into the wait); ahead: from the reply.
    assert report.pacing_delay_ms == [pytest.approx(50.0 if wall_offset_s < 0 else 100.0, abs=0.01)]
    assert clock.now == pytest.approx(asked + (0.1 if wall_offset_s < 0 else 0.15))


def test_without_redis_tasks_wait_out_the_quarantine_then_pace_locally(parts):
    dispatcher, pacer, worker, deferrer, clock = parts
    pacer.down = True
    first = dispatcher.run([item(1)], remaining())
    assert first.redis_unavailable and worker.commands == []
    assert deferrer.deferred == [(item(1)["messageId"], 15_000)]  # the quarantine, in ms
    clock.sleep(ENV.redis_quarantine_seconds + 1)
    later = dispatcher.run([item(2), item(3)], remaining())
    assert later.counts["DialsSent"] == 2 and later.effective_cps == ENV.degraded_cps
    assert pacer.finished == []  # nothing to settle in a Redis that is not there


def test_items_that_break_the_contract_are_dropped_with_the_shared_reasons(parts):
    dispatcher, _, worker, _, _ = parts
    report = dispatcher.run(
        ["not an object", item(1, phoneNumber="0501"), dict(item(2), campaign={"config": {}}), item(3), item(3)],
        remaining(),
    )
    assert [str(d.reason) for d in report.drops] == [
        "record_not_an_object",
        "invalid_phone_number",
        "campaign_misconfigured",
        "repeated_message_id",
    ]
    assert len(worker.commands) == 1 and report.counts["DialsDropped"] == 4


# -- compliance around the admission script -------------------------------------------------

COMPLIANT = dialer_env(calling_hours="08:00-21:00", default_time_zone="America/New_York", task_max_age_hours=24)


def compliant_dispatcher(wall: datetime):
    return dispatcher_with(COMPLIANT, wall_clock=lambda: wall)[:4]


def test_a_task_outside_its_window_waits_for_the_opening_without_a_claim_or_a_slot():
    # 06:00 in Los Angeles (+1 415): the window opens at 08:00, two hours on: one 900 s hop.
    dispatcher, pacer, worker, deferrer = compliant_dispatcher(datetime(2026, 1, 15, 14, 0, tzinfo=UTC))
    report = dispatcher.run([item(1)], remaining())
    assert worker.commands == [] and pacer.reserved == []
    assert deferrer.deferred == [(item(1)["messageId"], 900_000)]
    assert report.deferrals == {"outside_window": 1}


def test_the_last_hop_ends_at_the_opening():
    # 07:55 in Los Angeles: 300 s (and a millisecond) to go.
    dispatcher, _, _, deferrer = compliant_dispatcher(datetime(2026, 1, 15, 15, 55, tzinfo=UTC))
    dispatcher.run([item(1)], remaining())
    assert deferrer.deferred == [(item(1)["messageId"], 300_001)]


def test_a_slot_that_falls_after_the_window_closes_is_released_and_deferred():
    # 20:59:59.990 in Los Angeles; the pacer's slot is 50 ms later, after 21:00.
    dispatcher, pacer, worker, deferrer = compliant_dispatcher(datetime(2026, 1, 16, 4, 59, 59, 990_000, tzinfo=UTC))
    pacer.scripted = [[Admission(Decision.DIAL, 50_000)]]
    report = dispatcher.run([item(1)], remaining())
    assert worker.commands == []
    assert pacer.finished[0]["released"] == [enriched_task(1).call_id]
    assert report.deferrals == {"outside_window": 1} and deferrer.deferred[0][1] == 900_000


@pytest.mark.parametrize(
    "task_fields, first_sent_ms, reason",
    [
        ({"expiresAt": "2026-01-15T18:59:59+00:00"}, None, "expired"),
        ({}, int(datetime(2026, 1, 14, 18, 0, tzinfo=UTC).timestamp() * 1000), "expired"),  # 25 h old
        ({"phoneNumber": "+14150000000"}, None, "invalid_phone_number"),  # E.164, but no such number
    ],
)
def test_expired_tasks_and_undialable_numbers_are_dropped(task_fields, first_sent_ms, reason):
    dispatcher, pacer, worker, _ = compliant_dispatcher(datetime(2026, 1, 15, 19, 0, tzinfo=UTC))  # 11:00 LA
    raw = item(1, **task_fields)
    raw["firstSentMs"] = first_sent_ms
    report = dispatcher.run([raw], remaining())
    assert [str(d.reason) for d in report.drops] == [reason]
    assert worker.commands == [] and pacer.reserved == []


def test_a_task_inside_its_window_and_age_is_dialed():
    dispatcher, _, worker, _ = compliant_dispatcher(datetime(2026, 1, 15, 19, 0, tzinfo=UTC))
    raw = item(1, expiresAt="2026-01-15T20:00:00Z")
    raw["firstSentMs"] = int(datetime(2026, 1, 15, 0, 0, tzinfo=UTC).timestamp() * 1000)
    assert dispatcher.run([raw], remaining()).counts["DialsSent"] == 1 and len(worker.commands) == 1
