"""Writing records into call_attempts: one statement per batch, idempotent and order-free.

A redelivered record never makes a second row, and an outcome that arrives before its attempt is
kept (an orphan: disposition null) and merged when the attempt comes. How two records of one
call merge is said once, per column, in `_RULES`; the statement applies it both within a batch
(records grouped by callId) and against the row already there (ON CONFLICT).

The row's partition (recorded_at) comes from call_attempt_keys, upserted in the same statement:
`ON CONFLICT DO UPDATE ... RETURNING` locks and returns the key row even when another writer
committed it after this statement began, so concurrent writers of one callId wait for each other
and agree on the month. Keys are taken in callId order, so two batches never deadlock on them. A
new key is a new call (the key and the row are written together), which is how `inserted` is
counted: a partitioned table's RETURNING cannot show xmax.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from call_ledger.records import Record
from shared.drops import DropReason

# Every way two values of one column merge:
#   first:    the value already written stays (a redelivery carries the same one)
#   earliest: the earlier time (two goes at one attempt keep the first)
#   dialed:   `dialed` over `dropped`: a task the worker took was called, whatever else was said.
#             Except over a `worker_rejected` drop, where only a `dialed` record with the worker's
#             status wins: one without (the dialer's duplicate, re-sending what its claim says, and
#             the claim of a refused call says the same) is no evidence of a call
_RULES: dict[str, tuple[str, str]] = {
    "parent_call_id": ("text", "first"),
    "campaign_id": ("text", "first"),
    "contact_id": ("text", "first"),
    "phone_number": ("text", "first"),
    "attempt": ("integer", "first"),
    "disposition": ("text", "dialed"),
    "reason": ("text", "first"),
    "admitted_at": ("timestamptz", "earliest"),
    "sent_at": ("timestamptz", "earliest"),
    "dropped_at": ("timestamptz", "earliest"),
    "worker_status": ("integer", "first"),
    "time_zones": ("text", "first"),
    "outcome": ("text", "first"),
    "ended_at": ("timestamptz", "first"),
    "duration_seconds": ("double precision", "first"),
    "task_body": ("jsonb", "first"),
}
COLUMNS = tuple(_RULES)
REJECTED = str(DropReason.WORKER_REJECTED)


def _in_batch(column: str, rule: str) -> str:
    if rule == "earliest":
        return f"min({column})"
    if rule == "dialed":
        return (
            f"CASE WHEN bool_or({column} = 'dialed' AND worker_status IS NOT NULL) THEN 'dialed'"
            f" WHEN bool_or(reason = '{REJECTED}') THEN 'dropped'"
            f" WHEN bool_or({column} = 'dialed') THEN 'dialed' ELSE max({column}) END"
        )
    return f"(array_agg({column} ORDER BY ord) FILTER (WHERE {column} IS NOT NULL))[1]"


def _on_conflict(column: str, rule: str) -> str:
    old, new = f"a.{column}", f"EXCLUDED.{column}"
    if rule == "earliest":
        return f"{column} = LEAST({old}, {new})"
    if rule == "dialed":
        # A row's worker_status comes only from a dialed record that had one (drops carry none).
        confirmed = f"({old} = 'dialed' AND a.worker_status IS NOT NULL) OR ({new} = 'dialed' AND EXCLUDED.worker_status IS NOT NULL)"
        return (
            f"{column} = CASE WHEN {confirmed} THEN 'dialed'"
            f" WHEN '{REJECTED}' IN (a.reason, EXCLUDED.reason) THEN 'dropped'"
            f" WHEN 'dialed' IN ({old}, {new}) THEN 'dialed' ELSE COALESCE({old}, {new}) END"
        )
    return f"{column} = COALESCE({old}, {new})"


_NL = ",\n    "
WRITE_SQL = f"""
WITH input AS (
  SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(
    call_id text, ord integer, {_NL.join(f"{c} {t}" for c, (t, _) in _RULES.items())})
), merged AS (
  SELECT call_id, {_NL.join(f"{_in_batch(c, rule)} AS {c}" for c, (_, rule) in _RULES.items())}
  FROM input GROUP BY call_id
), keys AS (
  INSERT INTO call_attempt_keys AS k (call_id, recorded_at)
  SELECT call_id, %(now)s FROM merged ORDER BY call_id
  ON CONFLICT (call_id) DO UPDATE SET recorded_at = k.recorded_at
  RETURNING k.call_id, k.recorded_at, (k.xmax = 0) AS inserted
)
INSERT INTO call_attempts AS a (call_id, recorded_at, {", ".join(COLUMNS)})
SELECT m.call_id, keys.recorded_at, {", ".join(f"m.{c}" for c in COLUMNS)}
FROM merged m JOIN keys ON keys.call_id = m.call_id
ON CONFLICT (call_id, recorded_at) DO UPDATE SET
    {_NL.join(_on_conflict(c, rule) for c, (_, rule) in _RULES.items())}
RETURNING a.call_id, (SELECT inserted FROM keys WHERE keys.call_id = a.call_id)
"""


@dataclass(frozen=True)
class WriteResult:
    """`call_ids`: every call the batch touched (what the retry step looks at next); `inserted`:
    how many of them were new rows, the others merged into rows already there."""

    call_ids: tuple[str, ...]
    inserted: int

    @property
    def merged(self) -> int:
        return len(self.call_ids) - self.inserted


def write(conn: psycopg.Connection, records: Iterable[Record], now: datetime) -> WriteResult:
    """Writes the records in one statement and commits; `now` is the recorded_at of new calls."""
    return write_rows(conn, [record.to_row() for record in records], now)


def write_rows(conn: psycopg.Connection, rows: Sequence[Mapping[str, Any]], now: datetime) -> WriteResult:
    """Rows of ledger columns (a subset each; call_id and campaign_id always), as `write`."""
    if not rows:
        return WriteResult((), 0)
    payload = [{**row, "ord": i} for i, row in enumerate(rows)]
    with conn.transaction():
        returned = conn.execute(WRITE_SQL, {"rows": Jsonb(payload), "now": now}).fetchall()
    return WriteResult(tuple(call_id for call_id, _ in returned), sum(1 for _, inserted in returned if inserted))


def orphans(conn: psycopg.Connection, older_than: timedelta, now: datetime) -> int:
    """Outcomes recorded more than `older_than` ago whose attempt never came."""
    row = conn.execute(
        "SELECT count(*) FROM call_attempts WHERE disposition IS NULL AND outcome IS NOT NULL AND recorded_at < %s",
        (now - older_than,),
    ).fetchone()
    return int(row[0]) if row else 0
