"""A restore request on the records queue: parsed like the other records (a RecordDrop, never an
exception, for one that breaks the shape) and carried out by `handle_restore`, which the ledger's
core calls for a message of kind "restore" (the wire form: shared/restore_request.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import psycopg

from call_ledger import restore
from call_ledger.records import RecordDrop, RecordDropReason
from shared.restore_request import RestoreRequest, from_wire, is_restore

__all__ = ["RestoreRequest", "RestoreEnv", "handle_restore", "is_restore_message", "parse_restore"]

# What from_wire finds wrong, in the records' vocabulary (an epoch is a Redis TIME).
_DROP_REASONS = {
    "version": RecordDropReason.UNSUPPORTED_VERSION,
    "epoch": RecordDropReason.INVALID_TIME,
    "requestedAt": RecordDropReason.INVALID_TIME,
}


class RestoreEnv(Protocol):
    """What a restore needs of the ledger's environment (LedgerEnv has it)."""

    @property
    def redis_key_prefix(self) -> str: ...

    @property
    def claim_ttl_seconds(self) -> int: ...


def _decode(body: Any) -> Any:
    try:
        return json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None


def is_restore_message(body: Any) -> bool:
    """Whether an SQS body is a restore request (the ledger's core routes on it)."""
    return is_restore(_decode(body))


def parse_restore(body: Any, message_id: str | None = None) -> RestoreRequest | RecordDrop:
    wire = _decode(body)
    if wire is None:
        return RecordDrop(RecordDropReason.INVALID_JSON, message_id)
    if not isinstance(wire, dict):
        return RecordDrop(RecordDropReason.NOT_AN_OBJECT, message_id)
    if not is_restore(wire):
        return RecordDrop(RecordDropReason.UNKNOWN_KIND, message_id, detail=repr(wire.get("kind"))[:40])
    parsed = from_wire(wire)
    if isinstance(parsed, str):
        return RecordDrop(_DROP_REASONS[parsed], message_id, detail=parsed)
    return parsed


def handle_restore(
    conn: psycopg.Connection,
    redis: Any,
    env: RestoreEnv,
    body: Any,
    now: datetime,
    *,
    recipient_key: bytes | None = None,
    message_id: str | None = None,
) -> restore.RestoreReport | RecordDrop:
    """Carries out one restore request: what it wrote, or the drop of a malformed one. PostgreSQL
    and Redis errors are raised: the message is then retried (a repeated restore is harmless).
    `recipient_key`: the dialer's recipient hash key (None: recipient counts are not restored)."""
    parsed = parse_restore(body, message_id)
    if isinstance(parsed, RecordDrop):
        return parsed
    return restore.apply(
        conn, redis, env.redis_key_prefix, parsed, now, env.claim_ttl_seconds, recipient_key=recipient_key
    )
