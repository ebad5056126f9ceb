"""What a Lambda SQS event source mapping does, on this machine: poll the queue, hand the handler
`{"Records": [...]}` (at most `batch_size` records, gathered for at most `batching_window_s`),
delete what succeeded, and leave for another receive the `batchItemFailures` and, when the handler
raises, the whole batch (its visibility timeout brings it back; the redrive policy ends it in the
DLQ)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from local_pipeline.lambda_context import LocalLambdaContext
from local_pipeline.pipe import pipes_record
from local_pipeline.sqs_local import LocalQueues

log = logging.getLogger("local_pipeline.event_source")


class LocalEventSourceMapping:
    def __init__(
        self,
        *,
        queues: LocalQueues,
        handler: Callable[[object, object], object],
        function_name: str,
        timeout_seconds: int,
        visibility_timeout_seconds: int,
        batch_size: int = 10,
        batching_window_s: float = 1.0,
    ) -> None:
        self.queues = queues
        self._client: Any = queues.poller  # as AWS polls: not with a function's SDK
        self.handler = handler
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.visibility_timeout = visibility_timeout_seconds
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.counts: Counter = Counter()  # invocations, records, deleted, failed_items, failed_batches
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, pollers: int = 1) -> LocalEventSourceMapping:
        for n in range(pollers):
            thread = threading.Thread(target=self._poll, name=f"{self.function_name}-esm-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_seconds + 2)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._collect()
                if batch:
                    self._invoke(batch)
            except Exception:  # a poller never dies; the messages come back after the visibility timeout
                log.exception("event source mapping poll failed")
                time.sleep(0.5)

    def _collect(self) -> list[dict]:
        batch: list[dict] = []
        first_at = None
        while len(batch) < self.batch_size and not self._stop.is_set():
            reply = self._client.receive_message(
                QueueUrl=self.queues.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(batch)),
                WaitTimeSeconds=1 if first_at is None else 0,
                VisibilityTimeout=self.visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            if messages and first_at is None:
                first_at = time.monotonic()
            batch += messages
            if first_at is None:
                continue
            if time.monotonic() - first_at >= self.batching_window_s:
                break
            if not messages:
                time.sleep(0.05)
        return batch

    def _invoke(self, messages: list[dict]) -> None:
        records = [pipes_record(m, self.queues.queue_arn) for m in messages]
        self.counts["invocations"] += 1
        self.counts["records"] += len(records)
        try:
            response = self.handler({"Records": records}, LocalLambdaContext(self.function_name, self.timeout_seconds))
        except Exception as exc:
            self.counts["failed_batches"] += 1
            log.warning("%s raised; the batch returns to the queue: %s", self.function_name, exc)
            return
        failures = response.get("batchItemFailures", []) if isinstance(response, dict) else []
        failed = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
        self.counts["failed_items"] += len(failed)
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._client.delete_message_batch(
                QueueUrl=self.queues.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        self.counts["deleted"] += len(done)
