"""A records queue for the producers' tests: an SQS queue the function sends its ledger records
to, read back as parsed records; and an SQS client that refuses every record."""

from __future__ import annotations

import uuid
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
    """SendMessageBatch answers every entry Failed, as SQS does when it throttles or errs."""

    def __init__(self) -> None:
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls += 1
        return {
            "Successful": [],
            "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in Entries],
        }
