"""Puts a task whose slot lies beyond this invocation back on the queue, with a delay.

A re-sent task starts with a fresh receive count, so a long backlog never pushes valid tasks into
the DLQ; its callId is unchanged, so the claim still guards against a second dial.
"""

from __future__ import annotations

import json
import math
from typing import Sequence

MAX_DELAY_SECONDS = 900  # SQS's limit


def delay_for(wait_ms: int) -> int:
    return max(1, min(MAX_DELAY_SECONDS, math.ceil(wait_ms / 1000)))


class Deferrer:
    def __init__(self, queue_url: str | None, client_factory) -> None:
        self._queue_url = queue_url
        self._client_factory = client_factory
        self._client = None

    def defer(self, entries: Sequence[tuple[str, dict, int]]) -> set[str]:
        """entries: (messageId, task body, wait ms). Returns the messageIds that were NOT re-queued."""
        if not entries:
            return set()
        if not self._queue_url:
            return {message_id for message_id, _, _ in entries}
        if self._client is None:
            self._client = self._client_factory()
        failed: set[str] = set()
        by_id = {f"e{i}": message_id for i, (message_id, _, _) in enumerate(entries)}
        batch = [
            {"Id": f"e{i}", "MessageBody": json.dumps(body), "DelaySeconds": delay_for(wait_ms)}
            for i, (_, body, wait_ms) in enumerate(entries)
        ]
        for start in range(0, len(batch), 10):  # SendMessageBatch takes at most 10 entries
            chunk = batch[start : start + 10]
            try:
                reply = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=chunk)
            except Exception:  # any SDK or network error: these tasks go back as batch failures
                failed.update(by_id[e["Id"]] for e in chunk)
                continue
            failed.update(by_id[f["Id"]] for f in reply.get("Failed", []))
        return failed
