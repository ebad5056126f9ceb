"""RecordSender: a record counts as sent only when SQS acknowledged it; ten per request."""

from __future__ import annotations

from datetime import UTC, datetime

from call_ledger.records import parse_message
from shared.call_records import AttemptRecord, RecordSender
from shared.drops import DropReason

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def record(n: int) -> AttemptRecord:
    return AttemptRecord.dropped(
        campaign_id="c", contact_id=f"k-{n}", attempt=0, reason=DropReason.EXPIRED, dropped_at=NOW
    )


class Sqs:
    def __init__(self, fail_ids=(), raise_on_call=None):
        self.requests = []
        self.fail_ids, self.raise_on_call = set(fail_ids), raise_on_call

    def send_message_batch(self, QueueUrl, Entries):
        self.requests.append(Entries)
        if self.raise_on_call == len(self.requests):
            raise ConnectionError("network")
        return {"Failed": [{"Id": e["Id"], "Code": "x"} for e in Entries if e["Id"] in self.fail_ids]}


def test_batches_of_ten_and_the_bodies_the_ledger_parses():
    sqs = Sqs()
    records = [(n, record(n)) for n in range(23)]
    assert RecordSender("https://q", lambda: sqs).send(records) == set()
    assert [len(r) for r in sqs.requests] == [10, 10, 3]
    assert parse_message("m", sqs.requests[0][1]["MessageBody"]) == record(1)


def test_failed_entries_and_a_failed_request_are_not_sent():
    sqs = Sqs(fail_ids={"2"}, raise_on_call=2)
    records = [(f"m-{n}", record(n)) for n in range(12)]
    assert RecordSender("https://q", lambda: sqs).send(records) == {"m-2", "m-10", "m-11"}


def test_no_queue_sends_nothing():
    made = []
    assert RecordSender(None, lambda: made.append(1)).send([("m", record(0))]) == set() and made == []
