"""The ledger's work on one invocation, without Lambda.

A batch of the records queue: parse each message (a bad one is a counted drop, never an error),
write the records in one statement, then put the retries their calls call for on the dial-tasks
queue (retries.enqueue_retries: exactly one per ended call). A database error fails the whole
batch: the event source mapping hands it back after the visibility timeout, and the DLQ (and
its alarm) catches what keeps failing, so records wait while PostgreSQL is down and none is lost.
Records whose retry could not be sent are batch item failures: they come again, and so does
the retry.

The retention job's event ({"retention": true}, from a schedule): retention.enforce.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

import psycopg

from call_ledger import restore, retention, store
from call_ledger.clients import LedgerClients
from call_ledger.env import LedgerEnv
from call_ledger.records import RecordDrop, parse_messages
from call_ledger.restore_request import handle_restore, is_restore_message
from call_ledger.retries import RetriesResult, enqueue_retries, sqs_enqueue

# An outcome whose attempt has not come this long after it is counted as an orphan: the dialer's
# record is normally seconds behind, redeliveries minutes.
ORPHAN_AFTER = timedelta(minutes=15)
RETENTION_EVENT_KEY = "retention"


@dataclass
class LedgerReport:
    """One invocation: the records read, written and merged, dropped, the retries, the orphans."""

    messages: int = 0
    drops: list[RecordDrop] = field(default_factory=list)
    written: int = 0
    merged: int = 0
    retries: RetriesResult = field(default_factory=RetriesResult)
    orphans: int | None = None
    failed_message_ids: list[str] = field(default_factory=list)
    # The event was neither an SQS batch nor the retention job's: nothing done.
    malformed_event: bool = False
    retention: retention.RetentionResult | None = None
    # Redis came back empty: the dialers' restore requests this batch carried out.
    restores: list[restore.RestoreReport] = field(default_factory=list)

    @property
    def dropped_by_reason(self) -> Counter[str]:
        return Counter(str(drop.reason) for drop in self.drops)


class LedgerResponse(TypedDict):
    batchItemFailures: list[dict[str, str]]


def is_retention_event(event: object) -> bool:
    return isinstance(event, dict) and event.get(RETENTION_EVENT_KEY) is True


def process(event: object, env: LedgerEnv, clients: LedgerClients, *, now: datetime) -> tuple[Any, LedgerReport]:
    """Database errors propagate (after the connection is dropped): the batch comes back."""
    try:
        if is_retention_event(event):
            return _retention(env, clients, now)
        return _records(event, env, clients, now)
    except psycopg.Error:
        clients.database.reset()
        raise


def _records(
    event: object, env: LedgerEnv, clients: LedgerClients, now: datetime
) -> tuple[LedgerResponse, LedgerReport]:
    messages = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(messages, list):
        return {"batchItemFailures": []}, LedgerReport(malformed_event=True)
    report = LedgerReport(messages=len(messages))
    restores = [m for m in messages if isinstance(m, dict) and is_restore_message(m.get("body"))]
    if restores:
        _restore(restores, env, clients, now, report)
        messages = [m for m in messages if not any(m is r for r in restores)]
    parsed = parse_messages(
        (str(m.get("messageId") or ""), m.get("body")) if isinstance(m, dict) else ("", None) for m in messages
    )
    report.drops.extend(parsed.drops)
    if not parsed.records:
        return {"batchItemFailures": []}, report
    conn = clients.database.connection()
    written = store.write(conn, [record for _, record in parsed.records], now)
    report.written, report.merged = written.inserted, len(parsed.records) - written.inserted
    enqueue = sqs_enqueue(clients.sqs, env.dial_tasks_queue_url, lambda: now)
    report.retries = enqueue_retries(conn, written.call_ids, enqueue, now)
    report.orphans = store.orphans(conn, ORPHAN_AFTER, now)
    # Every record of a call whose retry was not sent comes again, and with it the retry.
    unsent = set(report.retries.failed)
    report.failed_message_ids = sorted({mid for mid, record in parsed.records if record.call_id in unsent})
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in report.failed_message_ids]}, report


def _restore(messages: list[dict], env: LedgerEnv, clients: LedgerClients, now: datetime, report: LedgerReport) -> None:
    """Claims back into Redis from the ledger, before any record of this batch is written: a
    Redis error fails the batch like a database error (a repeated restore is harmless)."""
    for message in messages:
        done = handle_restore(
            clients.database.connection(), clients.redis, env, message.get("body"), now,
            recipient_key=clients.recipient_key, message_id=str(message.get("messageId") or ""),
        )  # fmt: skip
        if isinstance(done, RecordDrop):
            report.drops.append(done)
        else:
            report.restores.append(done)


def _retention(env: LedgerEnv, clients: LedgerClients, now: datetime) -> tuple[dict[str, Any], LedgerReport]:
    result = retention.enforce(clients.database.connection(), now, env.call_record_retention_days)
    report = LedgerReport(retention=result)
    return {"dropped": list(result.dropped), "created": list(result.created)}, report
