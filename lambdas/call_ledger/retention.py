"""Retention of the ledger: whole monthly partitions dropped once every row in them is older than
`retention_days`, and the next months' partitions created ahead. Run on a schedule.

A row is kept at least `retention_days` and at most about a month longer (its partition goes
when the month's last day is past the limit). Month bounds are UTC, as in the migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

# The names call_attempts_add_month (migrations/0004_call_attempts.sql) gives the partitions.
_PARTITION = re.compile(r"call_attempts_y(\d{4})m(\d{2})")
MONTHS_AHEAD = 3


@dataclass(frozen=True)
class RetentionResult:
    dropped: tuple[str, ...]
    created: tuple[str, ...]
    # Rows of dropped months: their calls' keys, and any left in the default partition.
    keys_deleted: int
    default_rows_deleted: int


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partitions(conn: psycopg.Connection) -> dict[str, datetime]:
    """The monthly partitions by name, each with the start of its month."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'call_attempts'::regclass"
    ).fetchall()
    found = {}
    for (name,) in rows:
        match = _PARTITION.fullmatch(name)
        if match:
            found[name] = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
    return found


def enforce(
    conn: psycopg.Connection, now: datetime, retention_days: int, months_ahead: int = MONTHS_AHEAD
) -> RetentionResult:
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    # Every row before this instant is past the limit; months ending by then go whole.
    keep_from = month_start(now - timedelta(days=retention_days))
    dropped = []
    for name, start in sorted(partitions(conn).items(), key=lambda item: item[1]):
        if next_month(start) <= keep_from:
            # One short transaction per partition: DROP locks the parent table while it runs.
            with conn.transaction():
                # As the tables' owner (migrations/0005): the writer itself may not drop tables.
                conn.execute("SELECT call_attempts_drop_month(%s)", (name,))
            dropped.append(name)
    with conn.transaction():
        default_rows = conn.execute("DELETE FROM call_attempts_default WHERE recorded_at < %s", (keep_from,)).rowcount
        keys = conn.execute("DELETE FROM call_attempt_keys WHERE recorded_at < %s", (keep_from,)).rowcount
    existing = set(partitions(conn))
    created = []
    start = month_start(now)
    for _ in range(months_ahead + 1):
        with conn.transaction():
            row = conn.execute("SELECT call_attempts_add_month(%s)", (start,)).fetchone()
        if row and row[0] not in existing:
            created.append(row[0])
        start = next_month(start)
    return RetentionResult(tuple(dropped), tuple(created), keys, default_rows)
