"""A records queue for the producers' tests: an SQS queue the function sends its ledger records
to, read back as parsed records; and an SQS client that refuses every record."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from call_ledger.records import Record, parse_message


class RecordsQueue:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.url = client.create_queue(QueueName=f"call-records-{uuid.uuid4().hex[:10]}")["QueueUrl"]

    def drain(self) -> list[Record]:
        """Every record sent so far, parsed by the ledger's own parser (a drop fails the test)."""
        records: list[Record] = []
        while True:
            reply = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=600)
            messages = reply.get("Messages", [])
            if not messages:
                return records
            for message in messages:
                parsed = parse_message(message["MessageId"], message["Body"])
                assert isinstance(parsed, Record), parsed
                records.append(parsed)


class RefusingSqs:
    """A boto3 SQS client on an HTTP endpoint of its own whose SendMessageBatch answers every
    entry Failed, as SQS does when it throttles or errs: the functions reach it as they reach SQS
    (shared.sqs_wire), over a real connection. `calls` counts the requests it answered."""

    def __init__(self) -> None:
        import boto3

        refusing = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                refusing.calls += 1
                failed = [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in request["Entries"]]
                body = json.dumps({"Successful": [], "Failed": failed}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.calls = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.client = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{self._server.server_address[1]}",
            region_name="us-east-1",
            aws_access_key_id="refusing",
            aws_secret_access_key="refusing",
        )
        self.meta = self.client.meta

    def _get_credentials(self) -> Any:
        return self.client._get_credentials()
