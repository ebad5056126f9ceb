"""The call ledger's records and their wire form: what every function sends on the records queue,
and `RecordSender`, which sends them. The ledger function (call_ledger/records.py) parses them back.

One small versioned shape, one record per message:

    {"kind": "attempt", "v": 1, "callId", "campaignId", "contactId", "attempt",
     "disposition": "dialed" | "dropped", "phoneNumber"?, "reason"? (dropped: a DropReason),
     "admittedAt"?, "sentAt" (dialed), "droppedAt" (dropped), "workerStatus"?, "parentCallId"?,
     "timeZones"? (dialed: the recipient's IANA zones its calling window was judged in),
     "task" (dialed: the task's body as the scheduler sent it, an object)}
    {"kind": "outcome", "v": 1, "callId", "campaignId", "outcome", "endedAt", "durationSeconds"?}

Times are ISO 8601 with an offset. `admittedAt` is the slot the dialer's admission gave the call
(where its claim and recipient count begin: what a Redis restore puts back), `sentAt` when the
worker accepted it, `droppedAt` when a function dropped it.

Here, not in call_ledger: a function's package holds only its own code and lambdas/shared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from shared.dial_task import MAX_ID_LENGTH, call_id_for
from shared.drops import Drop, DropReason

WIRE_VERSION = 1
Disposition = Literal["dialed", "dropped"]
DISPOSITIONS = ("dialed", "dropped")
# A dropped task's number may be anything the scheduler sent; the ledger keeps at most this much.
MAX_PHONE_LENGTH = 64
# A number's zones as libphonenumber gives them are a handful (a US number: one to four); more
# than this, or a name longer than IANA's, is not a record the dialer sent.
MAX_TIME_ZONES = 16
MAX_TIME_ZONE_LENGTH = 64
# SendMessageBatch's limit.
MAX_BATCH_ENTRIES = 10


@dataclass(frozen=True)
class AttemptRecord:
    """A task that left the pipeline: dialed (the worker accepted it) or dropped with its reason."""

    call_id: str
    campaign_id: str
    contact_id: str
    attempt: int
    disposition: Disposition
    phone_number: str | None = None
    reason: DropReason | None = None
    admitted_at: datetime | None = None
    sent_at: datetime | None = None
    dropped_at: datetime | None = None
    worker_status: int | None = None
    parent_call_id: str | None = None
    task: Mapping[str, Any] | None = None
    time_zones: tuple[str, ...] | None = None

    @classmethod
    def dialed(
        cls,
        *,
        campaign_id: str,
        contact_id: str,
        attempt: int,
        phone_number: str,
        task: Mapping[str, Any],
        sent_at: datetime,
        admitted_at: datetime | None = None,
        worker_status: int | None = None,
        time_zones: tuple[str, ...] | None = None,
    ) -> AttemptRecord:
        return cls(
            call_id_for(campaign_id, contact_id, attempt),
            campaign_id,
            contact_id,
            attempt,
            "dialed",
            phone_number=phone_number,
            admitted_at=admitted_at,
            sent_at=sent_at,
            worker_status=worker_status,
            task=task,
            time_zones=time_zones,
        )

    @classmethod
    def dropped(
        cls,
        *,
        campaign_id: str,
        contact_id: str,
        attempt: int,
        reason: DropReason,
        dropped_at: datetime,
        phone_number: str | None = None,
        worker_status: int | None = None,
    ) -> AttemptRecord:
        return cls(
            call_id_for(campaign_id, contact_id, attempt),
            campaign_id,
            contact_id,
            attempt,
            "dropped",
            phone_number=phone_number,
            reason=reason,
            dropped_at=dropped_at,
            worker_status=worker_status,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "kind": "attempt",
            "v": WIRE_VERSION,
            "callId": self.call_id,
            "campaignId": self.campaign_id,
            "contactId": self.contact_id,
            "attempt": self.attempt,
            "disposition": self.disposition,
        }
        optional = {
            "phoneNumber": self.phone_number,
            "reason": str(self.reason) if self.reason is not None else None,
            "admittedAt": _iso(self.admitted_at),
            "sentAt": _iso(self.sent_at),
            "droppedAt": _iso(self.dropped_at),
            "workerStatus": self.worker_status,
            "parentCallId": self.parent_call_id,
            "timeZones": list(self.time_zones) if self.time_zones else None,
            "task": dict(self.task) if self.task is not None else None,
        }
        wire.update({key: value for key, value in optional.items() if value is not None})
        return wire

    def to_row(self) -> dict[str, Any]:
        """The record as the ledger's columns (JSON-ready), what store.write sends."""
        return {
            "call_id": self.call_id,
            "parent_call_id": self.parent_call_id,
            "campaign_id": self.campaign_id,
            "contact_id": self.contact_id,
            "phone_number": self.phone_number,
            "attempt": self.attempt,
            "disposition": self.disposition,
            "reason": str(self.reason) if self.reason is not None else None,
            "admitted_at": _iso(self.admitted_at),
            "sent_at": _iso(self.sent_at),
            "dropped_at": _iso(self.dropped_at),
            "worker_status": self.worker_status,
            # One text column, the names comma-separated (IANA names have no commas).
            "time_zones": ",".join(self.time_zones) if self.time_zones else None,
            "task_body": dict(self.task) if self.task is not None else None,
        }


@dataclass(frozen=True)
class OutcomeRecord:
    """How a dialed call ended: the call event, as the call-events function received it."""

    call_id: str
    campaign_id: str
    outcome: str
    ended_at: datetime
    duration_seconds: float | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "kind": "outcome",
            "v": WIRE_VERSION,
            "callId": self.call_id,
            "campaignId": self.campaign_id,
            "outcome": self.outcome,
            "endedAt": self.ended_at.isoformat(),
        }
        if self.duration_seconds is not None:
            wire["durationSeconds"] = self.duration_seconds
        return wire

    def to_row(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "campaign_id": self.campaign_id,
            "outcome": self.outcome,
            "ended_at": self.ended_at.isoformat(),
            "duration_seconds": self.duration_seconds,
        }


Record = AttemptRecord | OutcomeRecord


def to_json(record: Record) -> str:
    """The SQS message body for a record."""
    return json.dumps(record.to_wire(), separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dropped_record(drop: Drop, dropped_at: datetime) -> AttemptRecord | None:
    """The `dropped` record of a drop whose task names a valid campaignId, contactId and
    attempts; None for the others (nothing identifies the call: only its log line and count)."""
    campaign, contact, attempts = drop.campaign_id, drop.contact_id, drop.attempts
    if not (_valid_id(campaign) and _valid_id(contact)):
        return None
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        return None
    phone = drop.phone_number
    return AttemptRecord.dropped(
        campaign_id=campaign,
        contact_id=contact,
        attempt=attempts,
        reason=drop.reason,
        dropped_at=dropped_at,
        phone_number=phone if isinstance(phone, str) and len(phone) <= MAX_PHONE_LENGTH else None,
    )


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_ID_LENGTH


K = TypeVar("K", bound=Hashable)


class RecordSender:
    """Sends records on the records queue (SendMessageBatch, 10 a request). A record counts as
    sent only when SQS acknowledged it: `send` returns the keys of the others, which the caller
    must not report done. No queue URL (tests about something else): nothing is sent."""

    def __init__(self, queue_url: str | None, client_factory: Callable[[], Any]) -> None:
        self.queue_url = queue_url
        self._client_factory = client_factory
        self._client: Any = None

    @classmethod
    def disabled(cls) -> RecordSender:
        return cls(None, lambda: None)

    def send(self, records: Sequence[tuple[K, Record]]) -> set[K]:
        """(key, record) pairs; returns the keys of the records NOT sent."""
        if not records or not self.queue_url:
            return set()
        if self._client is None:
            self._client = self._client_factory()
        not_sent: set[K] = set()
        for start in range(0, len(records), MAX_BATCH_ENTRIES):
            chunk = records[start : start + MAX_BATCH_ENTRIES]
            entries = [{"Id": str(i), "MessageBody": to_json(record)} for i, (_, record) in enumerate(chunk)]
            try:
                reply = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception:  # any SDK or network error: these records were not sent
                not_sent.update(key for key, _ in chunk)
                continue
            not_sent.update(chunk[int(failure["Id"])][0] for failure in reply.get("Failed", []))
        return not_sent


class RecordsNotSent(RuntimeError):
    """Records the enrichment could not send: it has no partial failure, so the batch is retried."""
