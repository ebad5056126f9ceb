"""What an EventBridge Pipe with an SQS source does, on this machine, with the stacks' settings.

Per execution: receive until the batch is full or the batching window has passed since the first
record; delete records the filter rejects (and non-JSON bodies); call the enrichment with the
records exactly as Pipes shapes them; skip the target on `[]`; call the target with the
enrichment's output; delete the batch on success, all but the `batchItemFailures` on a partial
failure, nothing when a step raises or names an unknown item (the whole batch then reappears
after the visibility timeout, and the queue's redrive policy moves it to the DLQ in the end).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from local_pipeline.event_pattern import record_matches
from local_pipeline.lambda_context import LocalLambdaContext
from local_pipeline.sqs_local import LocalQueues
from stacks.settings import Settings

log = logging.getLogger("local_pipeline")

Handler = Callable[[object, object], object]


@dataclass
class PipeStats:
    executions: int = 0
    filtered: int = 0
    # Every message the pipe deleted, once: a message whose visibility timeout ran out while it
    # was still being handled can be processed twice, but it only ends once.
    deleted_ids: set = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)  # redelivered, enrichment_failed, target_failed, ...
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, n in deltas.items():
                if name == "filtered":
                    self.filtered += n
                elif name == "executions":
                    self.executions += n
                else:
                    self.counts[name] += n


def pipes_record(message: dict, queue_arn: str, region: str = "us-east-1") -> dict:
    """An SQS message as Pipes hands it to the enrichment (no Records wrapper)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        # Pipes writes message attributes in lower camel case: {"stringValue", "dataType", ...}.
        "messageAttributes": {
            name: {key[0].lower() + key[1:]: value for key, value in attribute.items()}
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class LocalPipe:
    def __init__(
        self,
        *,
        settings: Settings,
        queues: LocalQueues,
        enrichment: Handler,
        target: Handler,
        visibility_timeout_seconds: int | None = None,
        batching_window_seconds: float | None = None,
    ) -> None:
        """`visibility_timeout_seconds` and `batching_window_seconds` default to the settings;
        tests and the demo may pass smaller values so a failed batch comes back in seconds rather
        than the deployed two minutes. The queue itself was created with the same value."""
        self.settings = settings
        self.queues = queues
        self.enrichment = enrichment
        self.target = target
        self.visibility_timeout = visibility_timeout_seconds or settings.visibility_timeout_seconds
        window = settings.pipe.batching_window_seconds if batching_window_seconds is None else batching_window_seconds
        self.batching_window = window
        self.stats = PipeStats()
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, parallel: int | None = None) -> LocalPipe:
        for n in range(parallel or self.settings.pipe.local_parallel_executions):
            thread = threading.Thread(target=self._poll, name=f"pipe-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.settings.pipe_execution_seconds + 5)

    def drained(self) -> bool:
        depth = self.queues.depth()
        with self._busy_lock:
            busy = self._busy
        return busy == 0 and not any(depth.values())

    def run_until_drained(
        self,
        *,
        timeout: float,
        progress: Callable[[dict], None] | None = None,
        producing: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Waits until the queue is empty (nothing visible, in flight or delayed) twice in a row
        and `producing()` says no more messages are coming."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            if progress:
                progress(self.queues.depth())
            quiet = quiet + 1 if not producing() and self.drained() else 0
            if quiet >= 2:
                return True
            time.sleep(0.5)
        return False

    # --- one poller --------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._collect()
                if batch:
                    self._execute(batch)
            except Exception:  # a poller never dies; the messages come back after the visibility timeout
                log.exception("pipe execution failed")

    def _collect(self) -> list[dict]:
        size = self.settings.pipe.batch_size
        batch: list[dict] = []
        first_at = None
        while len(batch) < size and not self._stop.is_set():
            wait = 1 if first_at is None else max(0, min(1, self.batching_window - (time.monotonic() - first_at)))
            reply = self.queues.poller.receive_message(
                QueueUrl=self.queues.queue_url,
                MaxNumberOfMessages=min(10, size - len(batch)),
                WaitTimeSeconds=int(wait),
                VisibilityTimeout=self.visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            if messages and first_at is None:
                first_at = time.monotonic()
                with self._busy_lock:
                    self._busy += 1
            batch += messages
            if first_at is None:
                continue
            if not messages and wait < 1:
                time.sleep(0.05)  # SQS long polling works in whole seconds; don't spin meanwhile
            if time.monotonic() - first_at >= self.batching_window:
                break
        return batch

    def _execute(self, messages: list[dict]) -> None:
        try:
            records = [pipes_record(m, self.queues.queue_arn) for m in messages]
            redelivered = sum(1 for r in records if int(r["attributes"].get("ApproximateReceiveCount", 1)) > 1)
            self.stats.add(executions=1, redelivered=redelivered)
            pattern = self.settings.pipe.filter_pattern
            kept = [r for r in records if record_matches(pattern, r)]
            rejected = [r for r in records if r not in kept]
            self._delete(rejected)
            self.stats.add(filtered=len(rejected))
            if not kept:
                return
            try:
                enriched = self.enrichment(
                    kept, LocalLambdaContext("enrich-dial-task", self.settings.enrichment.timeout_seconds)
                )
            except Exception as exc:
                self.stats.add(enrichment_failed=1)
                log.warning("enrichment raised; batch returns to the queue: %s", exc)
                return
            if not enriched:
                self._delete(kept)
                return
            try:
                response = self.target(
                    enriched, LocalLambdaContext("dialer-worker", self.settings.dialer.timeout_seconds)
                )
            except Exception as exc:
                self.stats.add(target_failed=1)
                log.warning("target raised; batch returns to the queue: %s", exc)
                return
            failed_ids = self._failed_ids(response, enriched)
            if failed_ids is None:
                self.stats.add(target_failed=1)
                return
            self.stats.add(items_retried=len(failed_ids))
            self._delete([r for r in kept if r["messageId"] not in failed_ids])
        finally:
            with self._busy_lock:
                self._busy -= 1

    @staticmethod
    def _failed_ids(response, enriched) -> set[str] | None:
        """The messageIds to retry, or None when the whole batch counts as failed (as Pipes does
        for an unknown or empty itemIdentifier, or a response it cannot read)."""
        if not isinstance(response, dict) or not response.get("batchItemFailures"):
            return set()
        known = {item.get("messageId") for item in enriched if isinstance(item, dict)}
        failed = set()
        for entry in response["batchItemFailures"]:
            identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
            if not identifier or identifier not in known:
                log.warning("target named an unknown itemIdentifier %r: the whole batch fails", identifier)
                return None
            failed.add(identifier)
        return failed

    def _delete(self, records: list[dict]) -> None:
        with self.stats.lock:
            self.stats.deleted_ids.update(r["messageId"] for r in records)
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            if chunk:
                self.queues.poller.delete_message_batch(
                    QueueUrl=self.queues.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
                )
