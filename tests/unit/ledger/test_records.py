"""The ledger records' wire form: what the functions send parses back to the same record, and
every malformed message is a drop with its reason, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from call_ledger.records import (
    AttemptRecord,
    OutcomeRecord,
    RecordDrop,
    RecordDropReason,
    parse,
    parse_message,
    parse_messages,
    to_json,
)
from shared.dial_task import call_id_for
from shared.drops import DropReason

SENT = datetime(2026, 3, 1, 20, 59, 30, tzinfo=timezone(timedelta(hours=-5)))
TASK = {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": "+15551234567", "attempts": 0, "extra": [1]}


def dialed(**overrides):
    fields = dict(campaign_id="c-1", contact_id="k-1", attempt=0, phone_number="+15551234567", task=TASK, sent_at=SENT)
    return AttemptRecord.dialed(**{**fields, **overrides})


def wire_of(record) -> dict:
    return json.loads(to_json(record))


def test_a_dialed_record_round_trips_through_its_wire_form():
    record = dialed(
        admitted_at=SENT - timedelta(seconds=1), worker_status=202, time_zones=("America/New_York", "America/Chicago")
    )
    wire = wire_of(record)
    assert wire["timeZones"] == ["America/New_York", "America/Chicago"]
    assert record.to_row()["time_zones"] == "America/New_York,America/Chicago"
    assert wire["kind"] == "attempt" and wire["v"] == 1
    assert wire["callId"] == call_id_for("c-1", "k-1", 0)
    assert "reason" not in wire and "droppedAt" not in wire, "absent fields are left out, not null"
    assert parse_message("m-1", to_json(record)) == record


def test_a_dropped_record_and_an_outcome_round_trip():
    dropped = AttemptRecord.dropped(
        campaign_id="c-1", contact_id="k-2", attempt=3, reason=DropReason.DO_NOT_CALL, dropped_at=SENT
    )
    outcome = OutcomeRecord(call_id_for("c-1", "k-1", 0), "c-1", "busy", SENT, 12.5)
    assert parse_message("m-1", to_json(dropped)) == dropped
    assert parse_message("m-2", to_json(outcome)) == outcome
    assert wire_of(outcome) == {
        "kind": "outcome",
        "v": 1,
        "callId": outcome.call_id,
        "campaignId": "c-1",
        "outcome": "busy",
        "endedAt": "2026-03-01T20:59:30-05:00",
        "durationSeconds": 12.5,
    }


def broken(change: dict, base=None) -> dict:
    wire = wire_of(base or dialed())
    for key, value in change.items():
        if value is ...:
            wire.pop(key)
        else:
            wire[key] = value
    return wire


@pytest.mark.parametrize(
    "wire, reason",
    [
        ([1, 2], RecordDropReason.NOT_AN_OBJECT),
        (broken({"kind": "cdr"}), RecordDropReason.UNKNOWN_KIND),
        (broken({"v": 2}), RecordDropReason.UNSUPPORTED_VERSION),
        (broken({"v": True}), RecordDropReason.UNSUPPORTED_VERSION),
        (broken({"callId": ""}), RecordDropReason.INVALID_CALL_ID),
        (broken({"campaignId": None}), RecordDropReason.INVALID_CAMPAIGN_ID),
        (broken({"contactId": 7}), RecordDropReason.INVALID_CONTACT_ID),
        (broken({"attempt": True}), RecordDropReason.INVALID_ATTEMPT),
        (broken({"attempt": -1}), RecordDropReason.INVALID_ATTEMPT),
        (broken({"attempt": 1}), RecordDropReason.CALL_ID_MISMATCH),
        (broken({"disposition": "deferred"}), RecordDropReason.INVALID_DISPOSITION),
        (broken({"phoneNumber": "+1" * 40}), RecordDropReason.INVALID_PHONE_NUMBER),
        (broken({"sentAt": "2026-03-01T20:59:30"}), RecordDropReason.INVALID_TIME),
        (broken({"sentAt": ...}), RecordDropReason.INVALID_TIME),
        (broken({"admittedAt": "yesterday"}), RecordDropReason.INVALID_TIME),
        (broken({"workerStatus": 99}), RecordDropReason.INVALID_WORKER_STATUS),
        (broken({"timeZones": "America/New_York"}), RecordDropReason.INVALID_TIME_ZONES),
        (broken({"timeZones": ["America/New_York", ""]}), RecordDropReason.INVALID_TIME_ZONES),
        (broken({"timeZones": ["A,B"]}), RecordDropReason.INVALID_TIME_ZONES),
        (broken({"timeZones": ["Etc/UTC"] * 17}), RecordDropReason.INVALID_TIME_ZONES),
        (broken({"task": ...}), RecordDropReason.INVALID_TASK),
        (broken({"task": "{}"}), RecordDropReason.INVALID_TASK),
        (broken({"reason": "do_not_call"}), RecordDropReason.INVALID_REASON),
        (broken({"disposition": "dropped", "droppedAt": SENT.isoformat()}), RecordDropReason.INVALID_REASON),
        (broken({"disposition": "dropped", "reason": "felt_like_it"}), RecordDropReason.INVALID_REASON),
        (broken({"disposition": "dropped", "reason": "expired"}), RecordDropReason.INVALID_TIME),
        (broken({"outcome": "hung_up"}, OutcomeRecord("x", "c", "busy", SENT)), RecordDropReason.INVALID_OUTCOME),
        (broken({"endedAt": 1700000000}, OutcomeRecord("x", "c", "busy", SENT)), RecordDropReason.INVALID_TIME),
        (
            broken({"durationSeconds": float("inf")}, OutcomeRecord("x", "c", "busy", SENT)),
            RecordDropReason.INVALID_DURATION,
        ),
        (broken({"durationSeconds": -1}, OutcomeRecord("x", "c", "busy", SENT)), RecordDropReason.INVALID_DURATION),
    ],
)
def test_each_malformed_record_is_a_drop_with_its_reason(wire, reason):
    parsed = parse(wire, "m-9")
    assert isinstance(parsed, RecordDrop)
    assert parsed.reason is reason
    assert parsed.message_id == "m-9"


def test_a_batch_keeps_the_good_records_and_counts_the_bad_by_reason():
    good = dialed()
    batch = parse_messages([("m-1", to_json(good)), ("m-2", "not json"), ("m-3", None), ("m-4", '{"kind": 1}')])
    assert batch.records == [("m-1", good)]
    assert batch.dropped_by_reason == {"invalid_json": 2, "unknown_kind": 1}


def test_times_keep_their_instant_whatever_the_offset():
    record = parse(broken({"sentAt": "2026-03-02T01:59:30Z"}))
    assert isinstance(record, AttemptRecord)
    assert record.sent_at == SENT.astimezone(UTC)
