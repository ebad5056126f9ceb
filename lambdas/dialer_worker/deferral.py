"""Puts a task that must wait back on the queue, with a delay.

The copy is the message the scheduler sent: the same body bytes (unknown fields included, never
larger), its MessageGroupId and its message attributes. It starts with a fresh receive count, so a
long backlog never pushes valid tasks into the DLQ; its callId is unchanged, so the claim still
guards against a second dial.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any

from shared.dial_task import FIRST_SENT_ATTRIBUTE, EnrichedTask

MAX_DELAY_SECONDS = 900  # SQS's limit
MAX_BATCH_ENTRIES = 10  # SendMessageBatch's limit
MAX_MESSAGE_ATTRIBUTES = 10  # SQS's limit per message


def delay_for(wait_ms: int) -> int:
    return max(1, min(MAX_DELAY_SECONDS, math.ceil(wait_ms / 1000)))


def send_attributes(attributes: dict) -> dict:
    """Pipes' record attributes ({"stringValue", "dataType"}) in SendMessage's shape."""
    converted = {}
    for name, value in attributes.items():
        if not isinstance(value, dict) or "dataType" not in value:
            continue
        entry = {"DataType": value["dataType"]}
        if value.get("stringValue") is not None:
            entry["StringValue"] = value["stringValue"]
        binary = value.get("binaryValue")
        if binary is not None:
            # Pipes hands a binary value over as base64 text; boto3 wants the bytes (it encodes
            # them itself), or the copy would carry the base64 text as its value.
            entry["BinaryValue"] = base64.b64decode(binary) if isinstance(binary, str) else binary
        converted[name] = entry
    return converted


def send_entry(entry_id: str, task: EnrichedTask, wait_ms: int) -> dict:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": task.body, "DelaySeconds": delay_for(wait_ms)}
    if task.message_group_id:
        entry["MessageGroupId"] = task.message_group_id
    attributes = send_attributes(task.message_attributes)
    # The first enqueue time travels with every copy, so the task's age counts from the
    # scheduler's send. (A message that already has SQS's ten attributes keeps its own ten.)
    if task.first_sent_ms is not None and len(attributes) < MAX_MESSAGE_ATTRIBUTES:
        attributes.setdefault(FIRST_SENT_ATTRIBUTE, {"DataType": "Number", "StringValue": str(task.first_sent_ms)})
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


class Deferrer:
    def __init__(self, queue_url: str | None, client_factory: Callable[[], Any]) -> None:
        self._queue_url = queue_url
        self._client_factory = client_factory
        self._client: Any = None

    def defer(self, entries: Sequence[tuple[EnrichedTask, int]]) -> dict[str, str]:
        """entries: (task, wait ms). Returns {messageId: why} for the tasks NOT re-queued."""
        if not entries:
            return {}
        if not self._queue_url:
            return {task.message_id: "no_defer_queue" for task, _ in entries}
        if self._client is None:
            self._client = self._client_factory()
        failed: dict[str, str] = {}
        by_id = {f"e{i}": task.message_id for i, (task, _) in enumerate(entries)}
        batch = [send_entry(f"e{i}", task, wait_ms) for i, (task, wait_ms) in enumerate(entries)]
        for start in range(0, len(batch), MAX_BATCH_ENTRIES):
            chunk = batch[start : start + MAX_BATCH_ENTRIES]
            try:
                reply = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=chunk)
            except Exception as exc:  # any SDK or network error: these tasks go back as batch failures
                failed.update({by_id[e["Id"]]: type(exc).__name__ for e in chunk})
                continue
            failed.update({by_id[f["Id"]]: str(f.get("Code", "failed")) for f in reply.get("Failed", [])})
        return failed
