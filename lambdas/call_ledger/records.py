"""The ledger's records as the writer reads them: each SQS message body parsed back into a record
(the shape and the wire form are shared/call_records.py's, where the producers build them).

A record that breaks the shape is a `RecordDrop` with its reason, never an exception: one bad
message must not hold back the batch it came in. No I/O, no Lambda types.
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeGuard

from shared.call_records import (
    DISPOSITIONS,
    MAX_PHONE_LENGTH,
    MAX_TIME_ZONE_LENGTH,
    MAX_TIME_ZONES,
    WIRE_VERSION,
    AttemptRecord,
    Disposition,
    OutcomeRecord,
    Record,
    to_json,
)
from shared.dial_task import MAX_ID_LENGTH, call_id_for
from shared.drops import DropReason
from shared.live_calls import OUTCOMES

# Re-exported: the ledger's readers and tests name the records from here.
__all__ = [
    "DISPOSITIONS",
    "MAX_PHONE_LENGTH",
    "WIRE_VERSION",
    "AttemptRecord",
    "Disposition",
    "OutcomeRecord",
    "ParsedBatch",
    "Record",
    "RecordDrop",
    "RecordDropReason",
    "parse",
    "parse_message",
    "parse_messages",
    "to_json",
]


class RecordDropReason(enum.StrEnum):
    """Why a ledger record was not written (the writer counts them by this)."""

    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_KIND = "unknown_kind"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_CALL_ID = "invalid_call_id"
    INVALID_CAMPAIGN_ID = "invalid_campaign_id"
    INVALID_CONTACT_ID = "invalid_contact_id"
    INVALID_ATTEMPT = "invalid_attempt"
    # The callId is not the UUIDv5 of campaignId, contactId and attempt: a producer's bug.
    CALL_ID_MISMATCH = "call_id_mismatch"
    INVALID_DISPOSITION = "invalid_disposition"
    INVALID_REASON = "invalid_reason"
    INVALID_PHONE_NUMBER = "invalid_phone_number"
    INVALID_TIME = "invalid_time"
    INVALID_WORKER_STATUS = "invalid_worker_status"
    INVALID_TIME_ZONES = "invalid_time_zones"
    INVALID_TASK = "invalid_task"
    INVALID_OUTCOME = "invalid_outcome"
    INVALID_DURATION = "invalid_duration"


@dataclass(frozen=True)
class RecordDrop:
    reason: RecordDropReason
    message_id: str | None = None
    call_id: str | None = None
    detail: str | None = None


@dataclass
class ParsedBatch:
    """A batch of messages as records (with their message ids) and the drops, counted by reason."""

    records: list[tuple[str, Record]] = field(default_factory=list)
    drops: list[RecordDrop] = field(default_factory=list)

    @property
    def dropped_by_reason(self) -> Counter[str]:
        return Counter(str(drop.reason) for drop in self.drops)


class _Drop(Protocol):
    """A drop of the record being parsed, for this reason."""

    def __call__(self, reason: RecordDropReason, detail: str | None = None) -> RecordDrop: ...


def parse_messages(messages: Iterable[tuple[str, Any]]) -> ParsedBatch:
    """(message id, SQS body) pairs as a ParsedBatch."""
    batch = ParsedBatch()
    for message_id, body in messages:
        parsed = parse_message(message_id, body)
        if isinstance(parsed, RecordDrop):
            batch.drops.append(parsed)
        else:
            batch.records.append((message_id, parsed))
    return batch


def parse_message(message_id: str | None, body: Any) -> Record | RecordDrop:
    try:
        decoded = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        decoded = None
    if decoded is None:
        return RecordDrop(RecordDropReason.INVALID_JSON, message_id)
    return parse(decoded, message_id)


def parse(wire: Any, message_id: str | None = None) -> Record | RecordDrop:
    """A record from its decoded wire form, or why it cannot be written."""
    if not isinstance(wire, dict):
        return RecordDrop(RecordDropReason.NOT_AN_OBJECT, message_id)
    kind = wire.get("kind")
    if kind not in ("attempt", "outcome"):
        return RecordDrop(RecordDropReason.UNKNOWN_KIND, message_id, detail=repr(kind)[:40])
    version = wire.get("v")
    if version != WIRE_VERSION or isinstance(version, bool):
        return RecordDrop(RecordDropReason.UNSUPPORTED_VERSION, message_id, detail=repr(version)[:40])
    call_id = wire.get("callId")
    if not _valid_id(call_id):
        return RecordDrop(RecordDropReason.INVALID_CALL_ID, message_id)

    def drop(reason: RecordDropReason, detail: str | None = None) -> RecordDrop:
        return RecordDrop(reason, message_id, call_id, detail)

    campaign_id = wire.get("campaignId")
    if not _valid_id(campaign_id):
        return drop(RecordDropReason.INVALID_CAMPAIGN_ID)
    if kind == "outcome":
        return _parse_outcome(wire, call_id, campaign_id, drop)
    return _parse_attempt(wire, call_id, campaign_id, drop)


def _parse_outcome(wire: dict, call_id: str, campaign_id: str, drop: _Drop) -> OutcomeRecord | RecordDrop:
    outcome = wire.get("outcome")
    if outcome not in OUTCOMES:
        return drop(RecordDropReason.INVALID_OUTCOME, repr(outcome)[:40])
    ended_at = _time(wire.get("endedAt"))
    if ended_at is None:
        return drop(RecordDropReason.INVALID_TIME, "endedAt")
    duration = wire.get("durationSeconds")
    if duration is not None and (not _number(duration) or not math.isfinite(duration) or duration < 0):
        return drop(RecordDropReason.INVALID_DURATION)
    return OutcomeRecord(call_id, campaign_id, outcome, ended_at, float(duration) if duration is not None else None)


def _parse_attempt(wire: dict, call_id: str, campaign_id: str, drop: _Drop) -> AttemptRecord | RecordDrop:
    contact_id = wire.get("contactId")
    if not _valid_id(contact_id):
        return drop(RecordDropReason.INVALID_CONTACT_ID)
    attempt = wire.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        return drop(RecordDropReason.INVALID_ATTEMPT)
    if call_id != call_id_for(campaign_id, contact_id, attempt):
        return drop(RecordDropReason.CALL_ID_MISMATCH)
    disposition = wire.get("disposition")
    if disposition not in DISPOSITIONS:
        return drop(RecordDropReason.INVALID_DISPOSITION, repr(disposition)[:40])
    phone = wire.get("phoneNumber")
    if phone is not None and (not isinstance(phone, str) or len(phone) > MAX_PHONE_LENGTH):
        return drop(RecordDropReason.INVALID_PHONE_NUMBER)
    times: dict[str, datetime | None] = {}
    for key in ("admittedAt", "sentAt", "droppedAt"):
        times[key] = _time(wire.get(key))
        if wire.get(key) is not None and times[key] is None:
            return drop(RecordDropReason.INVALID_TIME, key)
    status = wire.get("workerStatus")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        return drop(RecordDropReason.INVALID_WORKER_STATUS)
    parent = wire.get("parentCallId")
    if parent is not None and not _valid_id(parent):
        return drop(RecordDropReason.INVALID_CALL_ID, "parentCallId")
    zones = wire.get("timeZones")
    if zones is not None and not _time_zones(zones):
        return drop(RecordDropReason.INVALID_TIME_ZONES)
    task = wire.get("task")
    if task is not None and not isinstance(task, dict):
        return drop(RecordDropReason.INVALID_TASK)
    raw_reason = wire.get("reason")
    reason: DropReason | None = None
    if disposition == "dialed":
        # What a dialed record must carry: when the worker took it, and the body a retry re-sends.
        if raw_reason is not None:
            return drop(RecordDropReason.INVALID_REASON, "a dialed task has no drop reason")
        if times["sentAt"] is None:
            return drop(RecordDropReason.INVALID_TIME, "sentAt")
        if task is None:
            return drop(RecordDropReason.INVALID_TASK, "a dialed task carries its body")
    else:
        try:
            reason = DropReason(raw_reason if isinstance(raw_reason, str) else "")
        except ValueError:
            return drop(RecordDropReason.INVALID_REASON, repr(raw_reason)[:40])
        if times["droppedAt"] is None:
            return drop(RecordDropReason.INVALID_TIME, "droppedAt")
    return AttemptRecord(
        call_id,
        campaign_id,
        contact_id,
        attempt,
        disposition,
        phone_number=phone,
        reason=reason,
        admitted_at=times["admittedAt"],
        sent_at=times["sentAt"],
        dropped_at=times["droppedAt"],
        worker_status=status,
        parent_call_id=parent,
        task=task,
        time_zones=tuple(zones) if zones else None,
    )


def _valid_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_ID_LENGTH


def _time_zones(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_TIME_ZONES
        and all(isinstance(z, str) and 0 < len(z) <= MAX_TIME_ZONE_LENGTH and "," not in z for z in value)
    )


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _time(value: Any) -> datetime | None:
    """ISO 8601 with an offset, else None: a time without one could be read in any zone."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
