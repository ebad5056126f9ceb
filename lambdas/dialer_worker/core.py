"""The dialer's work on one batch, without Lambda: dial each enriched task at its reserved slot
and answer only the items to retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from dialer_worker.clients import DialerClients
from dialer_worker.dispatch import BatchReport
from dialer_worker.env import DialerEnv


class ItemFailure(TypedDict):
    itemIdentifier: str


class DialerResponse(TypedDict):
    """The pipe target's partial batch response: the messageIds to retry."""

    batchItemFailures: list[ItemFailure]


def process(
    event: object, env: DialerEnv, clients: DialerClients, *, remaining_ms: Callable[[], int]
) -> tuple[DialerResponse, BatchReport]:
    """`event`: the enrichment's array of items (anything else dials nothing). `remaining_ms`: the
    invocation's time left, which bounds how long a task may wait for its slot."""
    report = clients.dispatcher.run(event if isinstance(event, list) else [], remaining_ms)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failures]}, report
