"""The dialer's work on one batch, without Lambda: dial each enriched task at its reserved slot,
send the ledger its records (a `dialed` one per call the worker took, a `dropped` one per drop),
and answer only the items to retry.

A record is durable once SQS acknowledged it; an item whose record was not is a batch item
failure, so it comes back: a dialed one as a duplicate (its claim says so), whose `dialed` record
is sent again; a dropped one is judged and dropped again. The ledger merges the repeats. No
record for deferrals: a deferred task has not left the pipeline. No PostgreSQL here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypedDict

from dialer_worker.clients import DialerClients
from dialer_worker.dispatch import BatchReport
from dialer_worker.env import DialerEnv
from shared.call_records import AttemptRecord, dropped_record
from shared.drops import DropReason
from shared.observability import Metric


class ItemFailure(TypedDict):
    itemIdentifier: str


class DialerResponse(TypedDict):
    """The pipe target's partial batch response: the messageIds to retry."""

    batchItemFailures: list[ItemFailure]


def process(
    event: object,
    env: DialerEnv,
    clients: DialerClients,
    *,
    remaining_ms: Callable[[], int],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[DialerResponse, BatchReport]:
    """`event`: the enrichment's array of items (anything else dials nothing). `remaining_ms`: the
    invocation's time left, which bounds how long a task may wait for its slot."""
    items = event if isinstance(event, list) else []
    report = clients.dispatcher.run(items, remaining_ms)
    records = ledger_records(items, report, now())
    not_sent = clients.records.send(records)
    report.counts[Metric.RECORDS_SENT] += len(records) - len(not_sent)
    report.counts[Metric.RECORDS_NOT_SENT] += len(not_sent)
    failures = list(dict.fromkeys([*report.failures, *sorted(not_sent)]))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}, report


def ledger_records(items: list, report: BatchReport, now: datetime) -> list[tuple[str, AttemptRecord]]:
    """(messageId, record) for each call sent (or a duplicate of one) and each drop that names its call."""
    records: list[tuple[str, AttemptRecord]] = []
    for sent in report.sent:
        task = sent.task
        records.append(
            (
                task.message_id,
                AttemptRecord.dialed(
                    campaign_id=task.campaign_id,
                    contact_id=task.task.contact_id,
                    attempt=task.task.attempts,
                    phone_number=task.phone_number,
                    task=_body(task.body),
                    # A duplicate's own times are in its first record; the ledger keeps the earliest.
                    sent_at=sent.sent_at or now,
                    admitted_at=sent.admitted_at,
                    worker_status=sent.worker_status,
                    time_zones=sent.time_zones or None,
                ),
            )
        )
    fields = {item.get("messageId"): item.get("task") for item in items if isinstance(item, dict)}
    for drop in report.drops:
        # The other copy of a repeated messageId is the one judged (and recorded).
        if drop.reason is DropReason.REPEATED_MESSAGE_ID or not isinstance(drop.message_id, str):
            continue
        given = fields.get(drop.message_id)
        if not isinstance(given, dict):
            continue
        named = dataclasses.replace(
            drop,
            campaign_id=given.get("campaignId"),
            contact_id=given.get("contactId"),
            attempts=given.get("attempts", 0),
            phone_number=given.get("phoneNumber"),
        )
        record = dropped_record(named, now)
        if record is not None:
            records.append((drop.message_id, record))
    return records


def _body(body: str) -> dict[str, Any]:
    """The task as the scheduler sent it (the enrichment checked it is a JSON object)."""
    decoded = json.loads(body)
    return decoded if isinstance(decoded, dict) else {}
