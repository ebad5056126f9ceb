"""Pure pieces of the dialer: callIds, reply classification, local pacing, deferral delays."""

from __future__ import annotations

import pytest

from dialer_worker.admission import LATE_TOLERANCE_S, SLACK, Decision, LocalPacer, dial_spacing_us
from dialer_worker.admission.tuning import CALL_CPU_MS
from dialer_worker.deferral import delay_for, send_attributes
from dialer_worker.env import DialerEnv
from dialer_worker.worker_client import Outcome, classify
from shared.dial_task import call_id_for
from shared.env_contract import InvalidEnvironment


def test_call_id_is_deterministic_and_distinguishes_attempts():
    assert call_id_for("c", "k", 0) == call_id_for("c", "k", 0)
    assert (
        len({call_id_for("c", "k", 0), call_id_for("c", "k", 1), call_id_for("c", "k2", 0), call_id_for("c2", "k", 0)})
        == 4
    )
    # Separator: ("a", "bc") and ("ab", "c") are different tasks.
    assert call_id_for("a", "bc", 0) != call_id_for("ab", "c", 0)


@pytest.mark.parametrize(
    "status, outcome",
    [
        (200, Outcome.ACCEPTED),
        (202, Outcome.ACCEPTED),
        (409, Outcome.ALREADY_ACCEPTED),
        (429, Outcome.OVERLOADED),
        (503, Outcome.OVERLOADED),
        (400, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (500, Outcome.FAILED),
        (502, Outcome.FAILED),
    ],
)
def test_worker_replies(status, outcome):
    assert classify(status) is outcome


def test_local_pacer_spaces_calls_and_defers_past_the_budget():
    now = [100.0]
    pacer = LocalPacer(clock=lambda: now[0])
    reservation = pacer.reserve(5, cps=10, max_wait_ms=250)
    kinds = [a.decision for a in reservation.admissions]
    assert kinds == [Decision.DIAL] * 3 + [Decision.DEFER] * 2
    interval_us = (1 + SLACK) / 10 * 1_000_000
    assert [a.wait_us for a in reservation.admissions[:3]] == [0, round(interval_us), round(2 * interval_us)]


def test_degraded_rate_divides_max_cps_by_concurrency():
    variables = DialerEnv.variables(
        host="127.0.0.1",
        port=6379,
        worker_url="http://worker",
        max_cps=100,
        reserved_concurrency=50,
        claim_ttl_seconds=60,
        restore_hold_seconds=20,
        redis_quarantine_seconds=15,
        calling_hours="08:00-21:00",
        default_time_zone="America/New_York",
        task_max_age_hours=24,
        recipient_daily_limit=0,
        max_concurrent_calls=0,
        max_call_seconds=900,
    )
    assert DialerEnv.from_environ(variables).degraded_cps == 2
    with pytest.raises(InvalidEnvironment, match="MAX_CPS must be above 0"):
        DialerEnv.from_environ({**variables, "MAX_CPS": "0"})
    # The memory is the runtime's to say, never the stack's: absent, a full core.
    assert DialerEnv.from_environ(variables).lambda_memory_mb is None
    assert DialerEnv.from_environ({**variables, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}).lambda_memory_mb == 256


def test_a_containers_calls_are_spaced_by_the_cpu_its_memory_gives():
    # At 128 MB (7.2% of a core) one call's CPU budget takes 27.6 ms of the container's time.
    assert dial_spacing_us(128) == round(CALL_CPU_MS * 1000 * 1769 / 128) == 27_641
    assert dial_spacing_us(256) == 13_820
    assert dial_spacing_us(1769) == dial_spacing_us(10_240) == dial_spacing_us(None) == 0


@pytest.mark.parametrize("wait_ms, delay", [(0, 1), (1, 1), (1500, 2), (10 * 60 * 1000, 600), (3_600_000, 900)])
def test_deferral_delay_is_within_sqs_limits(wait_ms, delay):
    assert delay_for(wait_ms) == delay


def test_slack_covers_the_late_tolerance_with_room_for_the_trip_to_the_worker():
    assert 0 < SLACK <= 0.03  # at most 3% of MAX_CPS given up for exactness
    assert SLACK - LATE_TOLERANCE_S >= 0.010  # at least 10 ms of a second for network jitter


def test_a_binary_attribute_is_re_sent_as_its_bytes_not_as_the_base64_text_pipes_gave():
    attributes = {
        "blob": {"binaryValue": "AQI=", "dataType": "Binary"},
        "n": {"stringValue": "1", "dataType": "Number"},
    }
    assert send_attributes(attributes) == {
        "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        "n": {"DataType": "Number", "StringValue": "1"},
    }
