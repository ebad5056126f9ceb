"""The dialer's ledger records against real Redis, the worker stand-in and SQS (moto): a `dialed`
record per call the worker took (its slot, when it was settled, the worker's status, the body), a
`dropped` one per drop, none for a deferral; a duplicate sends its `dialed` record again; a
record SQS did not acknowledge makes its item a batch item failure. And a retry's notBefore:
deferred (reason not_before), a bad one dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from support.records_queue import RecordsQueue, RefusingSqs

from dialer_worker import core
from dialer_worker.clients import DialerClients
from shared.call_records import RecordSender
from shared.dial_task import call_id_for
from shared.drops import DeferReason, DropReason
from shared.sqs_wire import SqsWire

from .conftest import Remaining, item


@pytest.fixture
def records(sqs):
    return RecordsQueue(sqs)


def dial(dispatcher, sqs_client, queue_url, items):
    clients = DialerClients(
        redis=dispatcher.redis, dispatcher=dispatcher, records=RecordSender(queue_url, lambda: SqsWire(sqs_client))
    )
    return core.process(items, dispatcher.config, clients, remaining_ms=Remaining(20))


def test_dialed_dropped_and_deferred_tasks_and_their_records(make_dispatcher, sqs, records, late_check_off):
    dispatcher = make_dispatcher()
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).isoformat()
    items = [
        item(1),
        item(2, expiresAt="2020-01-01T00:00:00+00:00"),
        item(3, attempts=1, notBefore=later),
        item(4, notBefore="tomorrow"),
    ]
    response, report = dial(dispatcher, sqs, records.url, items)
    assert response == {"batchItemFailures": []}
    assert report.deferrals == {DeferReason.NOT_BEFORE: 1}
    got = {r.call_id: r for r in records.drain()}
    assert set(got) == {call_id_for("c-1", f"k-{n}", 0) for n in (1, 2, 4)}, "no record for the deferred task"
    sent = got[call_id_for("c-1", "k-1", 0)]
    assert sent.disposition == "dialed" and sent.phone_number == "+14155550001"
    assert sent.task == json.loads(items[0]["body"])
    assert 200 <= sent.worker_status < 300
    assert sent.time_zones == ("America/Los_Angeles",), "a 415 number, judged in its own zone"
    assert now - timedelta(seconds=1) <= sent.admitted_at <= sent.sent_at <= datetime.now(UTC)
    assert got[call_id_for("c-1", "k-2", 0)].reason is DropReason.EXPIRED
    assert got[call_id_for("c-1", "k-4", 0)].reason is DropReason.INVALID_NOT_BEFORE


def test_a_duplicate_sends_its_dialed_record_again(make_dispatcher, sqs, records, late_check_off):
    dispatcher = make_dispatcher()
    dial(dispatcher, sqs, records.url, [item(1)])
    first = records.drain()
    response, report = dial(dispatcher, sqs, records.url, [item(1)])
    assert response == {"batchItemFailures": []} and report.counts["DuplicateSuppressed"] == 1
    (again,) = records.drain()
    assert (again.call_id, again.disposition, again.task) == (first[0].call_id, "dialed", first[0].task)


def test_records_sqs_did_not_acknowledge_are_batch_item_failures(make_dispatcher, records, late_check_off):
    dispatcher = make_dispatcher()
    items = [item(1), item(2, expiresAt="2020-01-01T00:00:00+00:00")]
    response, report = dial(dispatcher, RefusingSqs(), records.url, items)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(i["messageId"] for i in items)
    assert report.counts["LedgerRecordsNotSent"] == 2
