"""The call events' work on one batch, without Lambda: parse each record, record the calls in
Redis (live sets, outcome windows, pace factors) in one round trip, send the ledger an `outcome`
record per parsed event (repeats included: the ledger merges them, and a repeat is how a record
whose first send failed gets written), and report what happened. An event whose record SQS did
not acknowledge is a batch item failure: it comes back, counted once by Redis, sent again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from call_events.clients import CallEventsClients
from call_events.env import CallEventsEnv
from call_events.events import CallEvent, EventDrop, parse_record
from call_events.loop import LoopResult
from shared.call_records import OutcomeRecord


@dataclass
class CallEventsReport:
    """One batch: what was counted, repeated, dropped, and the campaigns' state after it."""

    records: int = 0
    drops: list[EventDrop] = field(default_factory=list)
    result: LoopResult = field(default_factory=LoopResult)
    # The event was not the {"Records": [...]} of an SQS event source mapping (nothing recorded).
    malformed_event: bool = False
    # The ledger's outcome records: acknowledged by SQS, and not (their events are retried).
    records_sent: int = 0
    records_not_sent: int = 0


class CallEventsResponse(TypedDict):
    batchItemFailures: list[dict[str, str]]


def process(
    event: object, env: CallEventsEnv, clients: CallEventsClients
) -> tuple[CallEventsResponse, CallEventsReport]:
    """Redis errors propagate: the function fails and the whole batch comes back."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return {"batchItemFailures": []}, CallEventsReport(malformed_event=True)
    report = CallEventsReport(records=len(records))
    events: list[CallEvent] = []
    for record in records:
        parsed = parse_record(record)
        if isinstance(parsed, EventDrop):
            report.drops.append(parsed)
        else:
            events.append(parsed)
    report.result = clients.loop.record(events)
    records = [
        (e.message_id, OutcomeRecord(e.call_id, e.campaign_id, e.outcome, e.ended_at, e.duration_seconds))
        for e in events
    ]
    not_sent = clients.records.send(records)
    report.records_sent, report.records_not_sent = len(records) - len(not_sent), len(not_sent)
    # Every other record was counted, a repeat, or dropped for good: nothing to retry.
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(not_sent)]}, report
