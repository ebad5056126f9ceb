"""A call event (the worker's report of a finished call) from an SQS record, or why it is dropped.

    {"callId": str, "campaignId": str, "outcome": "answered" | "machine" | "no_answer" | "busy" |
     "failed" | "rejected", "endedAt": ISO 8601, "durationSeconds": number (optional)}

No I/O, no Lambda types.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.dial_task import MAX_ID_LENGTH
from shared.live_calls import OUTCOMES


class EventDropReason(enum.StrEnum):
    """Why a call event was not counted: the dimension `Reason` of CallEventsDropped."""

    RECORD_NOT_AN_OBJECT = "record_not_an_object"
    MISSING_MESSAGE_ID = "missing_message_id"
    INVALID_JSON = "invalid_json"
    BODY_NOT_AN_OBJECT = "body_not_an_object"
    INVALID_CALL_ID = "invalid_call_id"
    INVALID_CAMPAIGN_ID = "invalid_campaign_id"
    INVALID_OUTCOME = "invalid_outcome"
    INVALID_ENDED_AT = "invalid_ended_at"
    INVALID_DURATION = "invalid_duration"


@dataclass(frozen=True)
class CallEvent:
    message_id: str
    call_id: str
    campaign_id: str
    outcome: str
    ended_at: datetime
    duration_seconds: float | None = None

    @property
    def answered(self) -> bool:
        return self.outcome in ("answered", "machine")


@dataclass(frozen=True)
class EventDrop:
    reason: EventDropReason
    message_id: Any = None
    call_id: Any = None
    campaign_id: Any = None


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_ID_LENGTH


def parse_body(message_id: str, body: Any) -> CallEvent | EventDrop:
    if not isinstance(body, dict):
        return EventDrop(EventDropReason.BODY_NOT_AN_OBJECT, message_id)
    call_id, campaign_id = body.get("callId"), body.get("campaignId")
    drop = lambda reason: EventDrop(reason, message_id, call_id if isinstance(call_id, str) else None,  # noqa: E731
                                    campaign_id if isinstance(campaign_id, str) else None)  # fmt: skip
    if not _valid_id(call_id):
        return drop(EventDropReason.INVALID_CALL_ID)
    if not _valid_id(campaign_id):
        return drop(EventDropReason.INVALID_CAMPAIGN_ID)
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        return drop(EventDropReason.INVALID_OUTCOME)
    ended_raw = body.get("endedAt")
    try:
        ended_at = datetime.fromisoformat(ended_raw.replace("Z", "+00:00")) if isinstance(ended_raw, str) else None
    except ValueError:
        ended_at = None
    if ended_at is None or ended_at.tzinfo is None:
        return drop(EventDropReason.INVALID_ENDED_AT)
    duration = body.get("durationSeconds")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration < 0
    ):
        return drop(EventDropReason.INVALID_DURATION)
    return CallEvent(
        message_id, str(call_id), str(campaign_id), outcome, ended_at, float(duration) if duration is not None else None
    )


def parse_record(record: Any) -> CallEvent | EventDrop:
    """An SQS event source mapping record ({"messageId", "body", ...}) as a call event."""
    if not isinstance(record, dict):
        return EventDrop(EventDropReason.RECORD_NOT_AN_OBJECT)
    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return EventDrop(EventDropReason.MISSING_MESSAGE_ID)
    body = record.get("body")
    try:
        decoded = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        decoded = None
    if decoded is None:
        return EventDrop(EventDropReason.INVALID_JSON, message_id)
    return parse_body(message_id, decoded)
