"""Parsing the worker's call events: every malformed shape has its reason; good ones parse."""

from __future__ import annotations

import json

import pytest

from call_events.events import CallEvent, EventDrop, EventDropReason, parse_record

GOOD = {"callId": "call-1", "campaignId": "c-1", "outcome": "answered", "endedAt": "2026-11-29T10:00:00Z"}


def record(body, message_id="m-1"):
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body)}


def test_a_good_event_parses():
    event = parse_record(record({**GOOD, "durationSeconds": 42}))
    assert isinstance(event, CallEvent)
    assert (event.call_id, event.campaign_id, event.outcome, event.duration_seconds) == (
        "call-1",
        "c-1",
        "answered",
        42.0,
    )
    assert event.answered and event.ended_at.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not a record", EventDropReason.RECORD_NOT_AN_OBJECT),
        ({"body": json.dumps(GOOD)}, EventDropReason.MISSING_MESSAGE_ID),
        (record("{nope"), EventDropReason.INVALID_JSON),
        (record("[1]"), EventDropReason.BODY_NOT_AN_OBJECT),
        (record({**GOOD, "callId": ""}), EventDropReason.INVALID_CALL_ID),
        (record({**GOOD, "callId": "x" * 129}), EventDropReason.INVALID_CALL_ID),
        (record({**GOOD, "campaignId": 7}), EventDropReason.INVALID_CAMPAIGN_ID),
        (record({**GOOD, "outcome": "hung_up"}), EventDropReason.INVALID_OUTCOME),
        (record({**GOOD, "endedAt": "2026-11-29T10:00:00"}), EventDropReason.INVALID_ENDED_AT),
        (record({**GOOD, "endedAt": "yesterday"}), EventDropReason.INVALID_ENDED_AT),
        (record({**GOOD, "durationSeconds": -1}), EventDropReason.INVALID_DURATION),
        (record({**GOOD, "durationSeconds": True}), EventDropReason.INVALID_DURATION),
    ],
)
def test_each_malformed_event_has_its_reason(raw, reason):
    parsed = parse_record(raw)
    assert isinstance(parsed, EventDrop) and parsed.reason == reason


@pytest.mark.parametrize("outcome", ["answered", "machine", "no_answer", "busy", "failed", "rejected"])
def test_every_outcome_of_the_contract_parses(outcome):
    assert isinstance(parse_record(record({**GOOD, "outcome": outcome})), CallEvent)
