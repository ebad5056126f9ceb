"""Asks the call ledger to put Redis's claims back: one restore request on the records queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.restore_request import RestoreRequest


class RestoreRequester:
    def __init__(self, queue_url: str, client_factory: Callable[[], Any]) -> None:
        self._queue_url = queue_url
        self._client_factory = client_factory
        self._client: Any = None

    def request_restore(self, epoch: str, requested_at: datetime) -> str | None:
        """None once sent, else why not (the dispatcher tries again on its next batch)."""
        if self._client is None:
            self._client = self._client_factory()
        body = RestoreRequest(epoch, requested_at).to_json()
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except Exception as exc:  # any SDK or network error: the hold's bound still ends the wait
            return type(exc).__name__
        return None
