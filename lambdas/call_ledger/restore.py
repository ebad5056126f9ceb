"""What goes back into Redis after Redis came back empty (its claims epoch changed): read from
the ledger (restore_data), then written as the dialer's admission script keeps it (apply).

- claims: every call whose claim the dialer settled (the worker took it, or refused it for good
  with a 4xx) and that was admitted within `claim_ttl_seconds`: such a callId must never be
  dialed again while its claim would have lived;
- recipients: per number, the same calls admitted within the recipient window (the last day),
  so the recipient limit counts them again.

The times are the admission's (`admitted_at`; else the send's or the drop's), which is when the
dialer's claim and its recipient count begin. A record still on its way through the records
queue is not here yet: the ledger is as complete as the queue is drained.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from shared import redis_keys
from shared.drops import DropReason
from shared.restore_request import RestoreRequest

# Commands per pipelined round trip: a day's claims are tens of thousands of keys.
PIPELINE_BATCH = 1000

# The expression and predicate of call_attempts_claimed_idx (migrations/0004_call_attempts.sql),
# spelt the same so the planner uses that index.
_AT = "COALESCE(admitted_at, sent_at, dropped_at)"
_CLAIMED = f"(disposition = 'dialed' OR reason = '{DropReason.WORKER_REJECTED}')"


@dataclass(frozen=True)
class Claim:
    call_id: str
    campaign_id: str
    admitted_at: datetime
    # When the claim the dialer took would have expired (admitted_at + claim_ttl_seconds).
    expires_at: datetime


@dataclass(frozen=True)
class RecipientCall:
    call_id: str
    admitted_at: datetime


@dataclass(frozen=True)
class RestoreData:
    claims: tuple[Claim, ...]
    # Phone number (E.164, as the ledger keeps it; the dialer hashes it) -> its calls, oldest first.
    recipients: Mapping[str, tuple[RecipientCall, ...]]

    def recipient_count(self, phone_number: str) -> int:
        return len(self.recipients.get(phone_number, ()))


def restore_data(
    conn: psycopg.Connection, now: datetime, claim_ttl_seconds: int, recipient_window: timedelta
) -> RestoreData:
    """`recipient_window`: the dialer's (dialer_worker.admission.RECIPIENT_WINDOW_US)."""
    ttl = timedelta(seconds=claim_ttl_seconds)
    since = now - max(ttl, recipient_window)
    rows = conn.execute(
        f"SELECT call_id, campaign_id, phone_number, {_AT} AS at FROM call_attempts"
        f" WHERE {_CLAIMED} AND {_AT} > %s ORDER BY at, call_id",
        (since,),
    ).fetchall()
    claims = []
    recipients: dict[str, list[RecipientCall]] = defaultdict(list)
    for call_id, campaign_id, phone_number, at in rows:
        if at > now - ttl:
            claims.append(Claim(call_id, campaign_id, at, at + ttl))
        if at > now - recipient_window and phone_number:
            recipients[phone_number].append(RecipientCall(call_id, at))
    return RestoreData(tuple(claims), {phone: tuple(calls) for phone, calls in recipients.items()})


@dataclass(frozen=True)
class RestoreReport:
    epoch: str
    claims: int  # claim keys written
    recipients: int  # numbers whose count was written (0 without the recipient hash key)
    recipient_calls: int  # calls counted against them


def apply(
    conn: psycopg.Connection,
    redis: Any,
    prefix: str,
    request: RestoreRequest,
    now: datetime,
    claim_ttl_seconds: int,
    *,
    recipient_key: bytes | None = None,
) -> RestoreReport:
    """Writes the ledger's claims and recipient counts into Redis as reserve.lua and finish.lua
    keep them, then marks `request.epoch` restored; the dialers hold until that mark exists.

    A claim: CLAIM_ACCEPTED for what is left of its TTL. A recipient: its calls in its sorted set,
    member the claim key, score the admission (µs), expiring a window after the newest, as the
    script does. `recipient_key`: the dialer's recipient hash key (None: no recipient limit,
    counts not written). Idempotent: a repeated request writes the same keys again.
    """
    data = restore_data(conn, now, claim_ttl_seconds, timedelta(microseconds=redis_keys.RECIPIENT_WINDOW_US))
    # Not a transaction: the keys are independent and a repeated restore writes them again.
    pipe = redis.pipeline(transaction=False)
    claims = 0
    for claim in data.claims:
        ttl_ms = math.ceil((claim.expires_at - now).total_seconds() * 1000)
        if ttl_ms > 0:
            pipe.set(redis_keys.claim_key(prefix, claim.call_id), redis_keys.CLAIM_ACCEPTED, px=ttl_ms)
            claims += 1
            _send_when_full(pipe)
    recipients = recipient_calls = 0
    if recipient_key is not None:
        for phone, calls in data.recipients.items():
            key = redis_keys.recipient_key(prefix, redis_keys.recipient_hash(recipient_key, phone))
            pipe.zadd(key, {redis_keys.claim_key(prefix, c.call_id): _micros(c.admitted_at) for c in calls})
            newest_us = _micros(calls[-1].admitted_at) - _micros(now)
            pipe.pexpire(key, (newest_us + redis_keys.RECIPIENT_WINDOW_US) // 1000 + 1000)
            recipients += 1
            recipient_calls += len(calls)
            _send_when_full(pipe)
    # Without the request's epoch the next batch would start another hold, though the keys
    # written here already are that epoch's.
    pipe.set(redis_keys.epoch_key(prefix), request.epoch, nx=True)
    pipe.execute()
    # Last, and alone: the dialers dial again on it, so everything above is in Redis first.
    redis.set(redis_keys.restored_key(prefix, request.epoch), now.isoformat(), ex=redis_keys.RESTORED_TTL_S)
    return RestoreReport(request.epoch, claims=claims, recipients=recipients, recipient_calls=recipient_calls)


def _send_when_full(pipe: Any) -> None:
    if len(pipe) >= PIPELINE_BATCH:
        pipe.execute()  # and the pipeline starts empty again


def _micros(at: datetime) -> int:
    """A time as the scripts' scores: µs since the epoch (Redis TIME is UTC)."""
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
