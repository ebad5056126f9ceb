"""What the dialer puts back into Redis after Redis came back empty (its claims epoch changed):
read from the ledger, returned as plain data; writing it into Redis is the dialer's.

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

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from shared.drops import DropReason

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
