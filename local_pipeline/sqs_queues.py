"""Standard SQS queues in memory, with the semantics the pipeline relies on, at constant cost per
message: visibility timeouts, receive counts, redrive into a DLQ after maxReceiveCount receives,
DelaySeconds, long polling, and receipt handles that change on every receive. Fair receives, as
SQS fair queues do on a standard queue: messages may carry a MessageGroupId, and a receive takes
each message from the group with the fewest messages in flight (the oldest visible message breaks
a tie), so a group with a large backlog in flight does not hold back the others.
`Queues.fair_receives = False` turns that off (first in, first out across groups), for comparisons.

moto's SQS (the reference emulator, used in the contract tests) scans and deep-copies every
stored message on each call: a receive takes 0.5 s with 600 messages queued, which is the local
load test's ceiling, not the pacing's. Here visible messages wait in FIFO order per group, invisible
ones in a heap keyed by when they reappear, so no call looks at a message it does not return
(choosing a group looks at each group with visible messages once; there are as many as campaigns).

Message attributes are kept (a deferred copy carries its first enqueue time in one). Left out, as
the pipeline uses none of it: FIFO queues, retention expiry, purge and tags.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import threading
import time
import uuid
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field

MAX_BATCH = 10
MAX_BODY_BYTES = 262_144  # a queue's default maximum message size (it can be raised to 1 MiB)
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200
MAX_WAIT_SECONDS = 20
MAX_GROUP_ID_LENGTH = 128


class SqsError(Exception):
    """An error SQS itself would return: `code` is the shape name boto3 maps to an exception,
    `query_code` the legacy code botocore reports in `Error.Code`."""

    def __init__(self, code: str, message: str, *, query_code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.query_code = query_code or code
        self.status = status

    def __reduce__(self):  # crosses from the endpoint's process to its caller's intact
        return _sqs_error, (self.code, str(self), self.query_code, self.status)


def _sqs_error(code: str, message: str, query_code: str, status: int) -> SqsError:
    return SqsError(code, message, query_code=query_code, status=status)


def invalid(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message, query_code="InvalidParameterValue")


def bounded_int(value, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            f"Value {value!r} for parameter {name} is invalid. Reason: must be an integer from {low} to {high}."
        )
    return value


@dataclass(eq=False)
class Message:
    message_id: str
    body: str
    md5_of_body: str
    sent_timestamp_ms: int
    visible_at: float  # monotonic seconds
    receive_count: int = 0
    first_receive_timestamp_ms: int | None = None
    receipt_handle: str | None = None
    delayed: bool = False
    group_id: str | None = None
    # As SendMessage takes them: {name: {"DataType": ..., "StringValue" | "BinaryValue": ...}}.
    attributes: dict | None = None


class VisibleMessages:
    """A queue's visible message ids, used like a deque: `append(id)` when a stored message becomes
    visible, `popleft()` for the id the next receive returns. Kept per MessageGroupId (None: no
    group), each oldest first; `popleft` takes from the group with the fewest messages in flight,
    then the oldest (with the queue's fair receives off: the oldest of all)."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._groups: dict = {}  # group id -> deque of (seq, message id)
        self._seq = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, message_id: str) -> None:
        group = self._queue.messages[message_id].group_id
        self._groups.setdefault(group, deque()).append((next(self._seq), message_id))
        self._count += 1

    def popleft(self) -> str:
        if not self._groups:
            raise IndexError("no visible message")
        oldest = {g: waiting[0][0] for g, waiting in self._groups.items()}
        if self._queue.fair_receives:
            in_flight = self._queue.in_flight_by_group
            group = min(oldest, key=lambda g: (in_flight.get(g, 0), oldest[g]))
        else:
            group = min(oldest, key=oldest.__getitem__)
        waiting = self._groups[group]
        _, message_id = waiting.popleft()
        if not waiting:
            del self._groups[group]
        self._count -= 1
        return message_id


@dataclass(eq=False)
class Queue:
    name: str
    arn: str
    visibility_timeout: int = 30
    delay_seconds: int = 0
    dead_letter_queue: Queue | None = None
    max_receive_count: int | None = None
    redrive_policy: str | None = None
    messages: dict = field(default_factory=dict)  # message id -> Message, every stored message
    visible: VisibleMessages = field(init=False)  # message ids, by group, oldest first
    hidden: list = field(default_factory=list)  # heap of (visible_at, seq, message id, receipt handle)
    in_flight: int = 0
    in_flight_by_group: dict = field(default_factory=dict)  # group id -> messages in flight
    delayed: int = 0
    fair_receives: bool = True
    # What happened to every message stored here, counted by the store itself: "arrived" (sent
    # or moved in), "deleted" (by a valid receipt handle), "dead_lettered" (moved to the DLQ).
    ledger: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.visible = VisibleMessages(self)

    def counts(self) -> dict:
        return {
            "ApproximateNumberOfMessages": len(self.visible),
            "ApproximateNumberOfMessagesNotVisible": self.in_flight,
            "ApproximateNumberOfMessagesDelayed": self.delayed,
        }


@dataclass
class StoredQueue:
    """A copy of one queue's store at one moment (`Queues.stored`)."""

    name: str
    arn: str
    messages: dict  # message id -> Message (empty when not asked for)
    ledger: Counter  # as Queue.ledger


class Queues:
    """Every queue of one local SQS endpoint. Thread-safe: one lock, and a condition that wakes
    long-polling receivers when a message arrives."""

    def __init__(self, *, account: str = "000000000000", region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self._queues: dict[str, Queue] = {}
        self._by_arn: dict[str, Queue] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._fair_receives = True

    @property
    def fair_receives(self) -> bool:
        """The switch for every queue of this endpoint, present and future (on by default)."""
        return self._fair_receives

    @fair_receives.setter
    def fair_receives(self, on: bool) -> None:
        with self._lock:
            self._fair_receives = on
            for queue in self._queues.values():
                queue.fair_receives = on

    # --- queues --------------------------------------------------------------------------
    def create_queue(self, name: str, attributes: dict) -> Queue:
        with self._lock:
            if name in self._queues:
                return self._queues[name]
            queue = Queue(
                name=name, arn=f"arn:aws:sqs:{self.region}:{self.account}:{name}", fair_receives=self._fair_receives
            )
            self._set_attributes(queue, attributes)
            self._queues[name] = queue
            self._by_arn[queue.arn] = queue
            return queue

    def _set_attributes(self, queue: Queue, attributes: dict) -> None:
        for key, value in attributes.items():
            if key == "VisibilityTimeout":
                queue.visibility_timeout = bounded_int(_int(value, key), key, 0, MAX_VISIBILITY_SECONDS, 30)
            elif key == "DelaySeconds":
                queue.delay_seconds = bounded_int(_int(value, key), key, 0, MAX_DELAY_SECONDS, 0)
            elif key == "RedrivePolicy":
                try:
                    policy = json.loads(value)
                    target_arn, max_receives = policy["deadLetterTargetArn"], policy["maxReceiveCount"]
                except (TypeError, ValueError, KeyError):
                    raise invalid(
                        "Value for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map."
                    ) from None
                target = self._by_arn.get(target_arn)
                if target is None:
                    raise invalid(
                        "Value for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist."
                    )
                queue.dead_letter_queue = target
                queue.max_receive_count = bounded_int(
                    _int(max_receives, "maxReceiveCount"), "maxReceiveCount", 1, 1000, 10
                )
                queue.redrive_policy = value
            elif key in ("MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled"):
                pass  # accepted; retention never runs out on a test run
            else:
                raise SqsError("InvalidAttributeName", f"Unknown or unsupported queue attribute {key}.")

    def queue_named(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            raise SqsError(
                "QueueDoesNotExist",
                "The specified queue does not exist.",
                query_code="AWS.SimpleQueueService.NonExistentQueue",
            )
        return queue

    def stored(self, name: str, *, with_messages: bool = True) -> StoredQueue:
        """What the queue holds now, as copies: its ledger and (unless not wanted) every stored
        message, visible, in flight and delayed alike. For the runner's counts and `dialctl local
        up --keep`, which must see delayed messages that no receive returns."""
        with self._lock:
            queue = self.queue_named(name)
            messages = {i: _snapshot(m) for i, m in queue.messages.items()} if with_messages else {}
            return StoredQueue(name=queue.name, arn=queue.arn, messages=messages, ledger=Counter(queue.ledger))

    def attributes(self, name: str) -> dict:
        with self._lock:
            queue = self.queue_named(name)
            self._promote(queue, time.monotonic())
            attributes = {
                "QueueArn": queue.arn,
                "VisibilityTimeout": str(queue.visibility_timeout),
                "DelaySeconds": str(queue.delay_seconds),
                **{k: str(v) for k, v in queue.counts().items()},
            }
            if queue.redrive_policy:
                attributes["RedrivePolicy"] = queue.redrive_policy
            return attributes

    # --- messages ------------------------------------------------------------------------
    def send(self, name: str, body, delay_seconds=None, group_id=None, attributes=None) -> Message:
        if not isinstance(body, str) or not body:
            raise SqsError("MissingParameter", "The request must contain the parameter MessageBody.")
        if group_id is not None and not _valid_group_id(group_id):
            raise invalid(
                f"Value {group_id!r} for parameter MessageGroupId is invalid. Reason: 1 to {MAX_GROUP_ID_LENGTH}"
                " alphanumeric or punctuation characters."
            )
        encoded = body.encode()
        if len(encoded) > MAX_BODY_BYTES:
            raise invalid(
                f"One or more parameters are invalid. Reason: Message must be shorter than {MAX_BODY_BYTES} bytes."
            )
        with self._arrived:
            queue = self.queue_named(name)
            delay = bounded_int(delay_seconds, "DelaySeconds", 0, MAX_DELAY_SECONDS, queue.delay_seconds)
            now = time.monotonic()
            message = Message(
                message_id=str(uuid.uuid4()),
                body=body,
                md5_of_body=hashlib.md5(encoded).hexdigest(),
                sent_timestamp_ms=int(time.time() * 1000),
                visible_at=now + delay,
                group_id=group_id,
                attributes=checked_attributes(attributes),
            )
            queue.messages[message.message_id] = message
            queue.ledger["arrived"] += 1
            if delay:
                message.delayed = True
                queue.delayed += 1
                heapq.heappush(queue.hidden, (message.visible_at, next(self._seq), message.message_id, None))
            else:
                queue.visible.append(message.message_id)
            self._arrived.notify_all()
            return message

    def receive(self, name: str, *, max_messages=None, wait_seconds=None, visibility_timeout=None) -> list[Message]:
        count = bounded_int(max_messages, "MaxNumberOfMessages", 1, MAX_BATCH, 1)
        wait = bounded_int(wait_seconds, "WaitTimeSeconds", 0, MAX_WAIT_SECONDS, 0)
        deadline = time.monotonic() + wait
        with self._arrived:
            queue = self.queue_named(name)
            timeout = bounded_int(
                visibility_timeout, "VisibilityTimeout", 0, MAX_VISIBILITY_SECONDS, queue.visibility_timeout
            )
            while True:
                now = time.monotonic()
                self._promote(queue, now)
                received = self._take(queue, count, now, timeout)
                if received or now >= deadline:
                    return received
                # Wake for a new message, or when the next hidden one is due to reappear.
                until = min(deadline, queue.hidden[0][0]) if queue.hidden else deadline
                self._arrived.wait(max(0.001, until - now))

    def _take(self, queue: Queue, count: int, now: float, timeout: int) -> list[Message]:
        received: list[Message] = []
        while queue.visible and len(received) < count:
            message = queue.messages.get(queue.visible.popleft())
            if message is None:
                continue
            if queue.max_receive_count and message.receive_count >= queue.max_receive_count:
                del queue.messages[message.message_id]
                assert queue.dead_letter_queue is not None  # max_receive_count comes with a redrive policy
                self._move_to_dead_letter_queue(queue.dead_letter_queue, message)
                queue.ledger["dead_lettered"] += 1
                continue
            message.receive_count += 1
            if message.first_receive_timestamp_ms is None:
                message.first_receive_timestamp_ms = int(time.time() * 1000)
            message.receipt_handle = f"{message.message_id}#{uuid.uuid4().hex}"
            message.visible_at = now + timeout
            queue.in_flight += 1
            queue.in_flight_by_group[message.group_id] = queue.in_flight_by_group.get(message.group_id, 0) + 1
            heapq.heappush(
                queue.hidden, (message.visible_at, next(self._seq), message.message_id, message.receipt_handle)
            )
            received.append(_snapshot(message))
        return received

    def _move_to_dead_letter_queue(self, dlq: Queue, message: Message) -> None:
        # SQS keeps the message id, body and receive count when it redrives a message.
        message.receipt_handle = None
        message.visible_at = 0.0
        dlq.messages[message.message_id] = message
        dlq.visible.append(message.message_id)
        self._arrived.notify_all()

    def _promote(self, queue: Queue, now: float) -> None:
        """Makes visible again every hidden message whose time has come. Heap entries made stale by
        a delete or a visibility change are dropped here."""
        while queue.hidden and queue.hidden[0][0] <= now:
            visible_at, _, message_id, receipt_handle = heapq.heappop(queue.hidden)
            message = queue.messages.get(message_id)
            if message is None or message.visible_at != visible_at or message.receipt_handle != receipt_handle:
                continue
            if message.delayed:
                message.delayed = False
                queue.delayed -= 1
            else:
                _left_flight(queue, message)
                message.receipt_handle = None
            queue.visible.append(message_id)

    def _in_flight_message(self, queue: Queue, receipt_handle) -> Message | None:
        """The message this receipt handle belongs to, if it is still in flight with this very
        handle; SQS accepts an older handle but, as here, the message may then stay."""
        if not isinstance(receipt_handle, str) or "#" not in receipt_handle:
            raise SqsError(
                "ReceiptHandleIsInvalid",
                f'The input receipt handle "{receipt_handle}" is not a valid receipt handle.',
            )
        message = queue.messages.get(receipt_handle.split("#", 1)[0])
        if message is None or message.receipt_handle != receipt_handle:
            return None
        return message

    def delete(self, name: str, receipt_handle) -> None:
        with self._lock:
            queue = self.queue_named(name)
            message = self._in_flight_message(queue, receipt_handle)
            if message is not None:
                del queue.messages[message.message_id]
                queue.ledger["deleted"] += 1
                _left_flight(queue, message)

    def change_visibility(self, name: str, receipt_handle, visibility_timeout) -> None:
        with self._arrived:
            queue = self.queue_named(name)
            timeout = bounded_int(visibility_timeout, "VisibilityTimeout", 0, MAX_VISIBILITY_SECONDS, 0)
            message = self._in_flight_message(queue, receipt_handle)
            if message is None:
                raise SqsError(
                    "MessageNotInflight",
                    "Message is not in flight.",
                    query_code="AWS.SimpleQueueService.MessageNotInflight",
                )
            message.visible_at = time.monotonic() + timeout
            heapq.heappush(
                queue.hidden, (message.visible_at, next(self._seq), message.message_id, message.receipt_handle)
            )
            self._arrived.notify_all()


# --- message move tasks (DLQ redrive) ------------------------------------------------------
# Kept apart from the rest: StartMessageMoveTask moves every message of a dead-letter queue back
# to the queue that dead-lettered it (or to DestinationArn) as new messages with a fresh receive
# count. AWS moves them in the background; here the move is done before the call returns, and the
# task is listed as COMPLETED. Each endpoint's tasks, newest first:
_MOVE_TASKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def start_message_move_task(queues: Queues, source_arn, destination_arn=None) -> dict:
    with queues._arrived:
        source = queues._by_arn.get(source_arn) if isinstance(source_arn, str) else None
        if source is None:
            raise invalid("Value for parameter SourceArn is invalid. Reason: the queue does not exist.")
        origins = [q for q in queues._queues.values() if q.dead_letter_queue is source]
        if not origins:
            raise invalid("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn is not None:
            destination = queues._by_arn.get(destination_arn)
            if destination is None:
                raise invalid("Value for parameter DestinationArn is invalid. Reason: the queue does not exist.")
        elif len(origins) == 1:
            destination = origins[0]
        else:
            raise invalid("The local SQS endpoint needs a DestinationArn for a DLQ shared by several queues.")
        tasks = _MOVE_TASKS.setdefault(queues, [])
        if any(t["SourceArn"] == source_arn and t["Status"] == "RUNNING" for t in tasks):
            raise SqsError(
                "UnsupportedOperation",
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
            )
        now = time.monotonic()
        queues._promote(source, now)
        moved = 0
        while source.visible:
            message = source.messages.pop(source.visible.popleft(), None)
            if message is None:
                continue
            copy = Message(
                message_id=str(uuid.uuid4()),
                body=message.body,
                md5_of_body=message.md5_of_body,
                sent_timestamp_ms=int(time.time() * 1000),
                visible_at=now,
                group_id=message.group_id,
                attributes=message.attributes,
            )
            destination.messages[copy.message_id] = copy
            destination.ledger["arrived"] += 1
            destination.visible.append(copy.message_id)
            moved += 1
        queues._arrived.notify_all()
        task = {
            "TaskHandle": uuid.uuid4().hex,
            "Status": "COMPLETED",
            "SourceArn": source_arn,
            "DestinationArn": destination.arn,
            "ApproximateNumberOfMessagesMoved": moved,
            "ApproximateNumberOfMessagesToMove": moved,
            "StartedTimestamp": int(time.time() * 1000),
        }
        if destination_arn is None:
            del task["DestinationArn"]
        tasks.insert(0, task)
        return {"TaskHandle": task["TaskHandle"]}


def list_message_move_tasks(queues: Queues, source_arn, max_results=None) -> dict:
    limit = bounded_int(max_results, "MaxResults", 1, 10, 1)
    with queues._lock:
        if not isinstance(source_arn, str) or source_arn not in queues._by_arn:
            raise invalid("Value for parameter SourceArn is invalid. Reason: the queue does not exist.")
        tasks = [dict(t) for t in _MOVE_TASKS.get(queues, []) if t["SourceArn"] == source_arn]
    for task in tasks:
        if task["Status"] != "RUNNING":
            task.pop("TaskHandle")  # SQS returns the handle of a running task only
    return {"Results": tasks[:limit]}


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Value {value!r} for parameter {name} is invalid. Reason: must be an integer.") from None


def _left_flight(queue: Queue, message: Message) -> None:
    queue.in_flight -= 1
    left = queue.in_flight_by_group.pop(message.group_id) - 1
    if left:
        queue.in_flight_by_group[message.group_id] = left


MAX_MESSAGE_ATTRIBUTES = 10


def checked_attributes(attributes) -> dict | None:
    """Message attributes as SQS accepts them: at most ten, each with a String, Number or Binary
    data type and the matching value."""
    if not attributes:
        return None
    if not isinstance(attributes, dict) or len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise invalid(f"Number of message attributes must be at most {MAX_MESSAGE_ATTRIBUTES}.")
    for name, value in attributes.items():
        kind = str((value or {}).get("DataType", "")).split(".")[0]
        field = "BinaryValue" if kind == "Binary" else "StringValue"
        if kind not in ("String", "Number", "Binary") or (value or {}).get(field) in (None, ""):
            raise invalid(f"Message attribute {name!r} needs a DataType of String, Number or Binary and a {field}.")
    return attributes


def attributes_md5(attributes: dict | None) -> str | None:
    """SQS's MD5OfMessageAttributes (boto3 checks it): name, type and value, length-prefixed, by name."""
    if not attributes:
        return None
    digest = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        binary = value["DataType"].startswith("Binary")
        payload = value["BinaryValue"] if binary else value["StringValue"].encode()
        if isinstance(payload, str):
            payload = base64.b64decode(payload)
        for part in (name.encode(), value["DataType"].encode()):
            digest.update(len(part).to_bytes(4, "big") + part)
        digest.update(b"\x02" if binary else b"\x01")
        digest.update(len(payload).to_bytes(4, "big") + payload)
    return digest.hexdigest()


def _valid_group_id(group_id) -> bool:
    # SQS: 1 to 128 characters, alphanumeric or punctuation (printable ASCII without the space).
    return (
        isinstance(group_id, str)
        and 0 < len(group_id) <= MAX_GROUP_ID_LENGTH
        and all("!" <= c <= "~" for c in group_id)
    )


def _snapshot(message: Message) -> Message:
    """What one receive returned: later receives change the stored message, not this copy."""
    return Message(**{k: getattr(message, k) for k in Message.__dataclass_fields__})
