"""The call events' work on one batch, without Lambda: parse each record, record the calls in
Redis (live sets, outcome windows, pace factors) in one round trip, report what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from call_events.clients import CallEventsClients
from call_events.env import CallEventsEnv
from call_events.events import CallEvent, EventDrop, parse_record
from call_events.loop import LoopResult


@dataclass
class CallEventsReport:
    """One batch: what was counted, repeated, dropped, and the campaigns' state after it."""

    records: int = 0
    drops: list[EventDrop] = field(default_factory=list)
    result: LoopResult = field(default_factory=LoopResult)
    # The event was not the {"Records": [...]} of an SQS event source mapping (nothing recorded).
    malformed_event: bool = False


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
    # Every record was either counted, a repeat, or dropped for good: nothing to retry.
    return {"batchItemFailures": []}, report
