"""An SQS-compatible endpoint on this machine: the queues of `sqs_queues` behind the JSON protocol
that boto3 speaks to SQS, so the producer and the runner talk SQS over HTTP exactly as they would
to AWS. Only the operations the pipeline uses are served; any other gets a clear error.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from local_pipeline.services import free_port
from local_pipeline.sqs_queues import (
    MAX_BATCH,
    Message,
    Queues,
    SqsError,
    attributes_md5,
    list_message_move_tasks,
    start_message_move_task,
)

log = logging.getLogger("local_pipeline.sqs")


@dataclass
class LocalQueues:
    endpoint: str
    queue_url: str
    dlq_url: str
    queue_arn: str
    client: Any  # a boto3 SQS client

    def depth(self) -> dict[str, int]:
        attrs = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
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


class LocalSqsServer:
    def __init__(self) -> None:
        self.queues = Queues()
        self.port = free_port()
        api = SqsApi(self.queues, endpoint=self.endpoint)
        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(api))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="local-sqs", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A boto3 SQS client for this endpoint, with its own fake credentials and region: nothing
        is read from (or written to) the process's environment, and no real account is reached."""
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def start(self) -> LocalSqsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

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
