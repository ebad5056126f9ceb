"""An SQS-compatible queue and DLQ on this machine: moto's server, driven with boto3.

The producer and the runner talk SQS over HTTP, exactly as they would to AWS; moto honours
visibility timeouts, receive counts, redrive into the DLQ and DelaySeconds.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import boto3

from local_pipeline.services import free_port


@dataclass
class LocalQueues:
    endpoint: str
    queue_url: str
    dlq_url: str
    queue_arn: str
    client: object

    def depth(self) -> dict[str, int]:
        attrs = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def dlq_bodies(self) -> list[str]:
        """Every message in the DLQ (received with a long visibility so each is seen once)."""
        bodies = []
        while True:
            reply = self.client.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=3600)
            messages = reply.get("Messages", [])
            if not messages:
                return bodies
            bodies += [m["Body"] for m in messages]


class LocalSqsServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # Fake credentials only for the local server; never a real account.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        # moto's threaded server logs a traceback for each request it fails (it has a race on
        # concurrent receives); boto3 retries those, and the runner's accounting shows the outcome.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalSqsServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def create_queues(self, name: str, *, max_receive_count: int, visibility_timeout_seconds: int) -> LocalQueues:
        client = boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1")
        dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = client.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout_seconds),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
            },
        )["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalQueues(self.endpoint, queue_url, dlq_url, arn, client)
