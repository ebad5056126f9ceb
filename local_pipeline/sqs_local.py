"""An SQS-compatible endpoint on this machine: the queues of `sqs_queues` behind the JSON protocol
that boto3 speaks to SQS, so the producer, the functions and the runner talk SQS over HTTP exactly
as they would to AWS. Only the operations the pipeline uses are served; any other gets a clear error.

The endpoint runs in a child process of its own (`LocalSqsServer` is its handle here), as SQS is a
service of its own: the runner's interpreter then spends no time on its requests, and its dialers
are not held up by it. `python -m local_pipeline.sqs_local --port 9324` runs it on its own.

Two clients: the functions' own boto3 clients (`LocalSqsServer.client()`, and `LocalQueues.client`
for the producer, the tests and dialctl), whose cost per call is the functions' as it is in Lambda;
and `WireClient`, the same JSON protocol without boto3, for what in AWS runs on machines of its
own: the pipe's and the event source mappings' receives and deletes, the runner's queue depths,
and the worker stand-in's call events (the worker is another service). So the harness does not
take the CPU the functions would have to themselves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from local_pipeline.services import ask_child, end_child, serve_child, start_child, tell_child_to_stop
from local_pipeline.sqs_queues import (
    MAX_BATCH,
    Message,
    Queues,
    SqsError,
    StoredQueue,
    attributes_md5,
    list_message_move_tasks,
    start_message_move_task,
)

log = logging.getLogger("local_pipeline.sqs")

# How long start() waits for the child to listen, and stop() for it to exit before killing it.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
# How often a server's loop looks whether it is asked to stop.
SHUTDOWN_POLL_S = 0.05
# A WireClient's socket gives up after this long without a byte (receives wait 20 s at most).
WIRE_TIMEOUT_S = 30.0


class WireClient:
    """SQS's JSON protocol over keep-alive plain HTTP, one connection per thread, for the callers
    that in AWS are not the functions (the pollers of Pipes and of event source mappings, the
    worker): the same requests and replies as boto3's, without its request model, signing and
    response parsing, which cost the caller several times what the endpoint spends on the
    request. Unsigned, so for the local endpoint (and moto's) only. Methods take boto3's keyword
    names; an error reply raises SqsError with its code. Thread-safe."""

    def __init__(self, endpoint: str) -> None:
        url = urlsplit(endpoint)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"WireClient speaks plain HTTP to a host: not {endpoint!r}")
        self._address = (url.hostname, url.port or 80)
        self._local = threading.local()

    def receive_message(self, **request: Any) -> dict:
        return self.call("ReceiveMessage", request)

    def delete_message_batch(self, **request: Any) -> dict:
        return self.call("DeleteMessageBatch", request)

    def get_queue_attributes(self, **request: Any) -> dict:
        return self.call("GetQueueAttributes", request)

    def send_message_batch(self, **request: Any) -> dict:
        return self.call("SendMessageBatch", request)

    def call(self, operation: str, request: dict) -> dict:
        payload = json.dumps(request).encode()
        headers = {"X-Amz-Target": f"AmazonSQS.{operation}", "Content-Type": "application/x-amz-json-1.0"}
        conn = getattr(self._local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self._local.conn = self._connect()
        try:
            try:
                conn.request("POST", "/", payload, headers)
                reply = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # A kept-alive connection the endpoint had closed: once more on a new one.
                conn.close()
                conn = self._local.conn = self._connect()
                conn.request("POST", "/", payload, headers)
                reply = conn.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        document = json.loads(body) if body else {}
        if reply.status != 200:
            code = str(document.get("__type", "InternalError")).rsplit("#", 1)[-1]
            raise SqsError(code, str(document.get("message", "")), status=reply.status)
        return document

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(*self._address, timeout=WIRE_TIMEOUT_S)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


@dataclass
class LocalQueues:
    endpoint: str
    queue_url: str
    dlq_url: str
    queue_arn: str
    client: Any  # a boto3 SQS client
    # For the pipe's and the event source mappings' polling, and the depths.
    poller: WireClient = field(init=False)

    def __post_init__(self) -> None:
        self.poller = WireClient(self.endpoint)

    def depth(self) -> dict[str, int]:
        attrs = self.poller.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def dlq_bodies(self) -> list[str]:
        """Every message in the DLQ (received with a long visibility so each is seen once)."""
        bodies: list[str] = []
        while True:
            reply = self.client.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=3600)
            messages = reply.get("Messages", [])
            if not messages:
                return bodies
            bodies += [m["Body"] for m in messages]


class StoreHandle:
    """The endpoint's store as the runner reaches it past the SQS API, in the endpoint's process:
    what a queue holds (`stored`, one copy; `queue_named`, a view that copies on every read), a
    send that bypasses the API (`send`, for messages kept with their delays), and the fair
    receives switch."""

    def __init__(self, ask: Any) -> None:
        self._ask = ask

    def stored(self, name: str) -> StoredQueue:
        """The queue's messages and ledger, copied at one moment."""
        return self._ask("stored", name, True)

    def queue_named(self, name: str) -> QueueView:
        self._ask("stored", name, False)  # QueueDoesNotExist now, not on the first read
        return QueueView(self._ask, name)

    def send(self, name: str, body, delay_seconds=None, group_id=None, attributes=None) -> Message:
        return self._ask("send", name, body, delay_seconds, group_id, attributes)

    @property
    def fair_receives(self) -> bool:
        """The switch for every queue of this endpoint, present and future (on by default)."""
        return self._ask("get_fair_receives")

    @fair_receives.setter
    def fair_receives(self, on: bool) -> None:
        self._ask("set_fair_receives", bool(on))


class QueueView:
    """One queue of the store: `messages` (message id -> a copy of each stored message) and
    `ledger` (what happened to them, `sqs_queues.Queue.ledger`) as they are when read."""

    def __init__(self, ask: Any, name: str) -> None:
        self._ask = ask
        self.name = name

    @property
    def messages(self) -> dict[str, Message]:
        return self._ask("stored", self.name, True).messages

    @property
    def ledger(self) -> Counter:
        return self._ask("stored", self.name, False).ledger


class LocalSqsServer:
    """The handle of an endpoint in its own process (started by start(), ended by stop() or when
    this process goes: the child exits once its connection closes)."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.port: int | None = None
        self.queues = StoreHandle(self._ask)

    @property
    def endpoint(self) -> str:
        assert self.port is not None, "start() first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The endpoint's process (None when stopped)."""
        return self._process.pid if self._process is not None else None

    def client(self) -> Any:
        """A boto3 SQS client for this endpoint, with its own fake credentials and region: nothing
        is read from (or written to) the process's environment, and no real account is reached."""
        import boto3  # not in the endpoint's own process, which serves without it

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def start(self) -> LocalSqsServer:
        code = "import sys; from local_pipeline.sqs_local import _serve; _serve(int(sys.argv[1]), int(sys.argv[2]))"
        self._process, self._conn, port = start_child(
            code, str(self._requested_port), what="local SQS endpoint", timeout_s=START_TIMEOUT_S
        )
        self.port = int(port)
        return self

    def stop(self) -> None:
        with self._lock:
            if self._process is None:
                return
            assert self._conn is not None
            tell_child_to_stop(self._conn, STOP_TIMEOUT_S)
            self._conn.close()
            self._conn = None
            end_child(self._process, timeout_s=STOP_TIMEOUT_S)
            self._process = None

    def _ask(self, op: str, *args: Any) -> Any:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("local SQS endpoint not running: start() first")
            return ask_child(self._conn, op, args)

    def create_queues(self, name: str, *, max_receive_count: int, visibility_timeout_seconds: int) -> LocalQueues:
        client = self.client()
        dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = client.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
                ),
            },
        )["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalQueues(self.endpoint, queue_url, dlq_url, arn, client)


class _Listener(ThreadingHTTPServer):
    # A backlog as large as a real server's: socketserver's 5 drops the SYN of a client's new
    # connection whenever six arrive at once, and the client's retry comes a second later.
    request_queue_size = 511


class SqsServer:
    """The endpoint itself: the store and the HTTP server in front of it (in the endpoint's process)."""

    def __init__(self, port: int = 0) -> None:
        self.queues = Queues()
        api = SqsApi(self.queues, endpoint="")  # its URL once the port is bound
        self._http = _Listener(("127.0.0.1", port), _handler_for(api))
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self.endpoint = api.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> SqsServer:
        # A short poll interval: stop() (shutdown) waits for the loop to look, 0.5 s by default.
        thread = threading.Thread(target=self._http.serve_forever, args=(SHUTDOWN_POLL_S,), name="local-sqs")
        thread.daemon = True
        thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def _serve(fd: int, port: int) -> None:
    """The child: the endpoint, and what the parent asks of its store (services.serve_child)."""
    serve_child(fd, lambda: SqsServer(port).start(), _answer)


def _answer(server: SqsServer, op: str, args: tuple) -> Any:
    queues = server.queues
    if op == "stored":
        name, with_messages = args
        return queues.stored(name, with_messages=with_messages)
    if op == "send":
        return queues.send(*args)
    if op == "get_fair_receives":
        return queues.fair_receives
    if op == "set_fair_receives":
        queues.fair_receives = args[0]
        return None
    raise ValueError(f"unknown request {op!r}")


class SqsApi:
    """One method per SQS operation, taking and returning the JSON protocol's documents."""

    def __init__(self, queues: Queues, *, endpoint: str) -> None:
        self.queues = queues
        self.endpoint = endpoint

    def call(self, operation: str, request: dict) -> dict:
        method = getattr(self, operation, None) if operation[:1].isupper() else None
        if method is None:
            raise SqsError("UnsupportedOperation", f"The local SQS endpoint does not serve {operation}.")
        return method(request)

    def _name(self, request: dict) -> str:
        url = request.get("QueueUrl")
        if not isinstance(url, str) or not url:
            raise SqsError("MissingParameter", "The request must contain the parameter QueueUrl.")
        return url.rstrip("/").rsplit("/", 1)[-1]

    def CreateQueue(self, request: dict) -> dict:
        name = request.get("QueueName")
        if not isinstance(name, str) or not name or name.endswith(".fifo"):
            raise SqsError("InvalidParameterValue", "QueueName must name a standard queue.")
        self.queues.create_queue(name, request.get("Attributes") or {})
        return {"QueueUrl": f"{self.endpoint}/{self.queues.account}/{name}"}

    def GetQueueUrl(self, request: dict) -> dict:
        queue = self.queues.queue_named(str(request.get("QueueName") or ""))
        return {"QueueUrl": f"{self.endpoint}/{self.queues.account}/{queue.name}"}

    def GetQueueAttributes(self, request: dict) -> dict:
        attributes = self.queues.attributes(self._name(request))
        wanted = request.get("AttributeNames") or []
        if "All" not in wanted:
            attributes = {k: v for k, v in attributes.items() if k in wanted}
        return {"Attributes": attributes}

    def SendMessage(self, request: dict) -> dict:
        _no_system_attributes(request)
        message = self.queues.send(
            self._name(request),
            request.get("MessageBody"),
            request.get("DelaySeconds"),
            request.get("MessageGroupId"),
            request.get("MessageAttributes"),
        )
        return _sent(message)

    def SendMessageBatch(self, request: dict) -> dict:
        name = self._name(request)
        successful, failed = [], []
        for entry in _batch_entries(request):
            try:
                _no_system_attributes(entry)
                message = self.queues.send(
                    name,
                    entry.get("MessageBody"),
                    entry.get("DelaySeconds"),
                    entry.get("MessageGroupId"),
                    entry.get("MessageAttributes"),
                )
            except SqsError as error:
                if error.code == "QueueDoesNotExist":
                    raise
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": error.code, "Message": str(error)})
                continue
            successful.append({"Id": entry["Id"], **_sent(message)})
        return {"Successful": successful, "Failed": failed}

    def ReceiveMessage(self, request: dict) -> dict:
        received = self.queues.receive(
            self._name(request),
            max_messages=request.get("MaxNumberOfMessages"),
            wait_seconds=request.get("WaitTimeSeconds"),
            visibility_timeout=request.get("VisibilityTimeout"),
        )
        wanted = set(request.get("AttributeNames") or []) | set(request.get("MessageSystemAttributeNames") or [])
        names = set(request.get("MessageAttributeNames") or [])
        return {"Messages": [_message_document(m, wanted, names) for m in received]}

    def DeleteMessage(self, request: dict) -> dict:
        self.queues.delete(self._name(request), request.get("ReceiptHandle"))
        return {}

    def DeleteMessageBatch(self, request: dict) -> dict:
        name = self._name(request)
        successful, failed = [], []
        for entry in _batch_entries(request):
            try:
                self.queues.delete(name, entry.get("ReceiptHandle"))
            except SqsError as error:
                if error.code == "QueueDoesNotExist":
                    raise
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": error.code, "Message": str(error)})
                continue
            successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": failed}

    def ChangeMessageVisibility(self, request: dict) -> dict:
        self.queues.change_visibility(
            self._name(request), request.get("ReceiptHandle"), request.get("VisibilityTimeout")
        )
        return {}

    def StartMessageMoveTask(self, request: dict) -> dict:
        # DLQ redrive (sqs_queues.start_message_move_task); MaxNumberOfMessagesPerSecond is accepted, not applied.
        return start_message_move_task(self.queues, request.get("SourceArn"), request.get("DestinationArn"))

    def ListMessageMoveTasks(self, request: dict) -> dict:
        return list_message_move_tasks(self.queues, request.get("SourceArn"), request.get("MaxResults"))


def _batch_entries(request: dict) -> list[dict]:
    entries = request.get("Entries") or []
    if not entries:
        raise SqsError(
            "EmptyBatchRequest",
            "There should be at least one entry in the request.",
            query_code="AWS.SimpleQueueService.EmptyBatchRequest",
        )
    if len(entries) > MAX_BATCH:
        raise SqsError(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(entries)}.",
            query_code="AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        )
    ids = [e.get("Id") for e in entries]
    if len(set(ids)) != len(ids) or not all(isinstance(i, str) and i for i in ids):
        raise SqsError(
            "BatchEntryIdsNotDistinct",
            "Ids of the entries must be distinct, non-empty strings.",
            query_code="AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        )
    return entries


def _no_system_attributes(request: dict) -> None:
    if request.get("MessageSystemAttributes"):
        raise SqsError("InvalidParameterValue", "The local SQS endpoint keeps no message system attributes (X-Ray).")


def _sent(message: Message) -> dict:
    reply = {"MessageId": message.message_id, "MD5OfMessageBody": message.md5_of_body}
    if message.attributes:
        reply["MD5OfMessageAttributes"] = attributes_md5(message.attributes) or ""
    return reply


def _message_document(message: Message, wanted: set, attribute_names: frozenset | set = frozenset()) -> dict:
    attributes = {
        "ApproximateReceiveCount": str(message.receive_count),
        "SentTimestamp": str(message.sent_timestamp_ms),
        "ApproximateFirstReceiveTimestamp": str(message.first_receive_timestamp_ms),
        "SenderId": "000000000000",
    }
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    document: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if wanted:
        document["Attributes"] = attributes if "All" in wanted else {k: v for k, v in attributes.items() if k in wanted}
    chosen = {
        name: value
        for name, value in (message.attributes or {}).items()
        if {"All", ".*"} & attribute_names or name in attribute_names
    }
    if chosen:
        document["MessageAttributes"] = chosen
        document["MD5OfMessageAttributes"] = attributes_md5(chosen)
    return document


def _handler_for(api: SqsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses its connections
        disable_nagle_algorithm = True  # else each reply waits ~40 ms for a delayed ACK

        def do_POST(self) -> None:
            target = self.headers.get("X-Amz-Target", "")
            try:
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                if not target.startswith("AmazonSQS.") or not isinstance(request, dict):
                    raise SqsError("InvalidAction", "Send SQS's JSON protocol: X-Amz-Target AmazonSQS.<Operation>.")
                self._reply(200, api.call(target.split(".", 1)[1], request))
            except SqsError as error:
                self._reply(error.status, {"__type": f"com.amazonaws.sqs#{error.code}", "message": str(error)},
                            query_error=f"{error.query_code};Sender")  # fmt: skip
            except ValueError:
                self._reply(
                    400, {"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": "The body is not JSON."}
                )
            except Exception as error:  # a bug here must show as a 500, not as a hung client
                log.exception("local SQS failed on %s", target)
                self._reply(500, {"__type": "com.amazonaws.sqs#InternalError", "message": str(error)})

        def _reply(self, status: int, document: dict, *, query_error: str | None = None) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            if query_error:
                self.send_header("x-amzn-query-error", query_error)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # one line per request would drown the demo's output
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="The local SQS endpoint")
    parser.add_argument("--port", type=int, default=9324)
    args = parser.parse_args()
    server = SqsServer(args.port).start()  # this process is the endpoint's own already
    print(f"local SQS on {server.endpoint} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
