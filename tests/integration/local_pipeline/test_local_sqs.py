"""The local pipeline's SQS endpoint, held to moto's SQS (the reference emulator) by the same
tests over boto3: whatever the pipeline relies on behaves the same on both."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from local_pipeline.sqs_local import LocalSqsServer, WireClient
from local_pipeline.sqs_queues import SqsError


@pytest.fixture(scope="module")
def local_server():
    server = LocalSqsServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_endpoint(local_server):
    return local_server.endpoint


@pytest.fixture(params=["local", "moto"])
def sqs(request, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = request.getfixturevalue("local_endpoint" if request.param == "local" else "sqs_endpoint")
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def make_queue(sqs, *, visibility=30, max_receive_count=None):
    name = f"q-{uuid.uuid4().hex[:10]}"
    attributes = {"VisibilityTimeout": str(visibility)}
    dlq_url = None
    if max_receive_count:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        )
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], dlq_url


def receive(sqs, url, n=10, wait=0, **kwargs):
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=n, WaitTimeSeconds=wait, AttributeNames=["All"], **kwargs
    ).get("Messages", [])


def depth(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return tuple(
        int(attributes[k])
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def test_a_message_is_received_with_its_id_body_checksum_and_receive_count_then_deleted(sqs):
    url, _ = make_queue(sqs)
    body = json.dumps({"phoneNumber": "+14155550100", "name": "Zoë"})
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    [message] = receive(sqs, url)
    assert (message["MessageId"], message["Body"], message["MD5OfBody"]) == (
        sent["MessageId"],
        body,
        sent["MD5OfMessageBody"],
    )
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert depth(sqs, url) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert depth(sqs, url) == (0, 0, 0) and receive(sqs, url) == []


def test_a_message_not_deleted_comes_back_after_its_visibility_timeout_with_a_new_receipt(sqs):
    url, _ = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [first] = receive(sqs, url, VisibilityTimeout=1)
    assert receive(sqs, url) == []
    time.sleep(1.3)
    [again] = receive(sqs, url)
    assert again["MessageId"] == first["MessageId"] and again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_after_max_receive_count_receives_the_message_is_moved_to_the_dlq(sqs):
    url, dlq_url = make_queue(sqs, visibility=1, max_receive_count=2)
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert len(receive(sqs, url, wait=2)) == 1
        time.sleep(1.2)
    assert receive(sqs, url) == []
    [dead] = receive(sqs, dlq_url)
    assert (dead["MessageId"], dead["Body"]) == (sent["MessageId"], "poison")


def test_a_delayed_message_is_counted_as_delayed_and_received_only_after_its_delay(sqs):
    url, _ = make_queue(sqs)
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "later", "MessageBody": "later", "DelaySeconds": 1}, {"Id": "now", "MessageBody": "now"}],
    )
    assert depth(sqs, url) == (1, 0, 1)
    assert [m["Body"] for m in receive(sqs, url)] == ["now"]
    time.sleep(1.2)
    assert [m["Body"] for m in receive(sqs, url)] == ["later"]


def test_long_polling_returns_as_soon_as_a_message_arrives(sqs):
    url, _ = make_queue(sqs)
    threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=url, MessageBody="wake")).start()
    started = time.monotonic()
    messages = receive(sqs, url, wait=5)
    assert [m["Body"] for m in messages] == ["wake"] and time.monotonic() - started < 3


def test_a_receive_returns_at_most_ten_oldest_first_and_every_message_exactly_once(sqs):
    url, _ = make_queue(sqs)
    for start in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)])
    seen = []
    while batch := receive(sqs, url):
        assert len(batch) <= 10
        seen += [int(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    assert sorted(seen) == list(range(30))


@pytest.mark.parametrize(
    "entries, code",
    [
        (
            [{"Id": str(i), "MessageBody": "x"} for i in range(11)],
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        ),
        (
            [{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}],
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        ),
    ],
)
def test_a_malformed_batch_is_refused_whole(sqs, entries, code):
    url, _ = make_queue(sqs)
    with pytest.raises(ClientError) as refused:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert refused.value.response["Error"]["Code"] == code
    assert depth(sqs, url) == (0, 0, 0)


def test_a_message_group_id_on_a_standard_queue_comes_back_as_a_system_attribute(sqs):
    url, _ = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="campaign-a")
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "b", "MessageBody": "b", "MessageGroupId": "campaign-b"}, {"Id": "c", "MessageBody": "c"}],
    )
    everything = receive(sqs, url, VisibilityTimeout=0)
    assert {m["Body"]: m["Attributes"].get("MessageGroupId") for m in everything} == {
        "a": "campaign-a",
        "b": "campaign-b",
        "c": None,
    }
    asked = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"], VisibilityTimeout=0
    )
    assert {m["Body"]: m.get("Attributes", {}) for m in asked["Messages"]} == {
        "a": {"MessageGroupId": "campaign-a"},
        "b": {"MessageGroupId": "campaign-b"},
        "c": {},
    }
    not_asked = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert all("Attributes" not in m for m in not_asked)


def test_local_only_receives_favour_the_group_with_fewer_messages_in_flight(local_server):
    """SQS fair queues: a group with many messages in flight yields to the others. moto 5.2.5 keeps
    and returns a standard queue's MessageGroupId but receives first in, first out, so this holds
    the local endpoint alone."""
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"big-{start + i}", "MessageGroupId": "big"} for i in range(10)],
        )
    assert [m["Body"] for m in receive(sqs, url)] == [f"big-{i}" for i in range(10)]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"small-{i}", "MessageGroupId": "small"} for i in range(5)]
    )
    # 10 of big in flight, none of small: small first, then big again, each oldest first.
    assert [m["Body"] for m in receive(sqs, url)] == [f"small-{i}" for i in range(5)] + [
        f"big-{i}" for i in range(10, 15)
    ]
    # 15 of big in flight and 5 of small: only big is left to receive.
    assert [m["Body"] for m in receive(sqs, url)] == [f"big-{i}" for i in range(15, 25)]
    assert depth(sqs, url) == (5, 30, 0)


def test_local_only_fair_receives_can_be_turned_off_for_comparisons(local_server):
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"big-{i}", "MessageGroupId": "big"} for i in range(10)]
    )
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"small-{i}", "MessageGroupId": "small"} for i in range(2)]
    )
    local_server.queues.fair_receives = False
    try:
        assert [m["Body"] for m in receive(sqs, url, n=5)] == [f"big-{i}" for i in range(5)]
    finally:
        local_server.queues.fair_receives = True
    assert [m["Body"] for m in receive(sqs, url, n=5)] == ["small-0", "small-1", "big-5", "big-6", "big-7"]


def test_local_only_a_message_group_id_sqs_would_refuse_is_refused(local_server):
    """SQS takes 1 to 128 alphanumeric or punctuation characters; moto accepts anything."""
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    reply = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "MessageBody": "x", "MessageGroupId": "c-1"},
            {"Id": "space", "MessageBody": "x", "MessageGroupId": "a b"},
            {"Id": "long", "MessageBody": "x", "MessageGroupId": "g" * 129},
        ],  # fmt: skip
    )
    assert [s["Id"] for s in reply["Successful"]] == ["ok"]
    assert sorted(f["Id"] for f in reply["Failed"]) == ["long", "space"]


def test_local_only_an_oversized_entry_fails_alone_in_its_batch(local_server):
    """As SQS does with a body over the queue's default 256 KiB; moto does not check the size."""
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    reply = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "ok", "MessageBody": "x"}, {"Id": "big", "MessageBody": "x" * 262_145}]
    )
    assert [s["Id"] for s in reply["Successful"]] == ["ok"]
    assert [f["Id"] for f in reply["Failed"]] == ["big"] and reply["Failed"][0]["SenderFault"]


def test_message_attributes_come_back_as_sent_with_the_checksum_boto3_verifies(sqs):
    """A deferred copy keeps the scheduler's attributes, and its first enqueue time in one."""
    url, _ = make_queue(sqs)
    attributes = {
        "source": {"DataType": "String", "StringValue": "crm"},
        "firstSentTimestamp": {"DataType": "Number", "StringValue": "1700000000000"},
    }
    sent = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "{}", "MessageAttributes": attributes, "DelaySeconds": 0}]
    )
    assert sent["Successful"][0]["MD5OfMessageAttributes"]  # boto3 checked it against what it sent
    [message] = receive(sqs, url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"]


def test_an_unknown_queue_is_an_error_boto3_maps(sqs):
    url, _ = make_queue(sqs)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_attributes(QueueUrl=url + "-nope", AttributeNames=["All"])


def test_a_made_up_receipt_handle_is_refused(sqs):
    url, _ = make_queue(sqs)
    with pytest.raises(ClientError) as refused:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    assert refused.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


def test_local_only_a_stale_receipt_handle_leaves_the_message_in_place(local_server):
    """SQS: deleting with an earlier receive's handle succeeds, but the message may stay. The local
    endpoint always keeps it (moto deletes it), the stricter case, so a pipe that deleted with a
    stale handle would see the message again rather than have it vanish."""
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [first] = receive(sqs, url, VisibilityTimeout=1)
    time.sleep(1.2)
    [second] = receive(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert depth(sqs, url) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    assert depth(sqs, url) == (0, 0, 0)


def test_local_only_the_ledger_counts_what_happened_not_what_was_attempted(local_server):
    """The local runner counts lost tasks from this ledger: a delete with a stale handle is no
    deletion, and a message moved to the DLQ is counted once, as such."""
    sqs = local_server.client()
    url, _ = make_queue(sqs, visibility=1, max_receive_count=2)
    queue = local_server.queues.queue_named(url.rsplit("/", 1)[1])
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    first = {m["Body"]: m["ReceiptHandle"] for m in receive(sqs, url)}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["b"])
    time.sleep(1.2)
    [again] = receive(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["a"])  # stale: "a" stays
    assert queue.ledger == {"arrived": 2, "deleted": 1} and len(queue.messages) == 1
    time.sleep(1.2)
    assert receive(sqs, url) == []  # its third receive moves it to the DLQ
    assert queue.ledger == {"arrived": 2, "deleted": 1, "dead_lettered": 1} and not queue.messages


def test_local_only_the_endpoint_has_a_process_of_its_own_that_stop_ends():
    server = LocalSqsServer().start()
    pid = server.pid
    assert pid is not None and pid != os.getpid()
    sqs = server.client()
    url, _ = make_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="a")
    server.stop()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="not running"):
        server.queues.queue_named(url.rsplit("/", 1)[1])


def test_local_only_the_wire_client_gets_what_boto3_gets(local_server):
    """WireClient (the pipe's, the event source mappings', the stand-in's) speaks the same protocol."""
    sqs = local_server.client()
    poller = WireClient(local_server.endpoint)
    url, _ = make_queue(sqs)
    attributes = {"firstSentMs": {"DataType": "Number", "StringValue": "17"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageGroupId="g", MessageAttributes=attributes)
    [message] = poller.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    assert message["MessageId"] == sent["MessageId"] and message["Body"] == "hello"
    assert message["MD5OfBody"] == hashlib.md5(b"hello").hexdigest()
    assert message["Attributes"]["MessageGroupId"] == "g" and message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["MessageAttributes"] == attributes
    assert (
        poller.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessagesNotVisible"
        ]
        == "1"
    )
    reply = poller.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}])
    assert reply == {"Successful": [{"Id": "0"}], "Failed": []}
    assert depth(sqs, url) == (0, 0, 0)
    with pytest.raises(SqsError) as refused:
        poller.receive_message(QueueUrl=url + "-gone", MaxNumberOfMessages=1)
    assert refused.value.code == "QueueDoesNotExist" and refused.value.status == 400


def test_local_only_the_store_is_reached_past_the_api_across_the_process_line(local_server):
    """What the runner and `dialctl local up --keep` read and send: delayed messages too."""
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    name = url.rsplit("/", 1)[1]
    local_server.queues.send(name, "later", 600, "g", {"a": {"DataType": "String", "StringValue": "x"}})
    sqs.send_message(QueueUrl=url, MessageBody="now")
    stored = local_server.queues.stored(name)
    assert sorted(m.body for m in stored.messages.values()) == ["later", "now"]
    assert stored.ledger == {"arrived": 2}
    [later] = [m for m in stored.messages.values() if m.body == "later"]
    assert (
        later.delayed
        and later.group_id == "g"
        and later.attributes == {"a": {"DataType": "String", "StringValue": "x"}}
    )
    assert [m["Body"] for m in receive(sqs, url)] == ["now"]
    with pytest.raises(SqsError) as refused:
        local_server.queues.send(name, "")
    assert refused.value.code == "MissingParameter"
    with pytest.raises(SqsError) as missing:
        local_server.queues.stored("no-such-queue")
    assert missing.value.code == "QueueDoesNotExist"


def test_local_only_an_operation_it_does_not_serve_is_a_clear_error(local_server):
    sqs = local_server.client()
    url, _ = make_queue(sqs)
    with pytest.raises(ClientError) as refused:
        sqs.purge_queue(QueueUrl=url)
    assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert "PurgeQueue" in refused.value.response["Error"]["Message"]


# -- DLQ redrive: StartMessageMoveTask / ListMessageMoveTasks --------------------------------------
# moto 5.2.5 answers these with "not been implemented", so they run against the local endpoint only;
# the expected shapes are those of the SQS API reference.


@pytest.fixture
def local_sqs(local_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("sqs", endpoint_url=local_endpoint, region_name="us-east-1")


def arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_a_move_task_sends_every_dead_letter_back_to_its_queue_as_a_new_message(local_sqs):
    url, dlq_url = make_queue(local_sqs, visibility=0, max_receive_count=1)
    for n in range(3):
        local_sqs.send_message(QueueUrl=url, MessageBody=f"task-{n}")
    receive(local_sqs, url)  # one receive each: the next receive dead-letters them
    assert receive(local_sqs, url) == []
    assert depth(local_sqs, dlq_url)[0] == 3

    handle = local_sqs.start_message_move_task(SourceArn=arn_of(local_sqs, dlq_url))["TaskHandle"]
    assert handle
    assert depth(local_sqs, dlq_url) == (0, 0, 0)
    back = receive(local_sqs, url)
    assert sorted(m["Body"] for m in back) == ["task-0", "task-1", "task-2"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"1"}  # a fresh count

    [task] = local_sqs.list_message_move_tasks(SourceArn=arn_of(local_sqs, dlq_url))["Results"]
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 3
    assert task["SourceArn"] == arn_of(local_sqs, dlq_url) and "TaskHandle" not in task


def test_a_move_task_needs_a_dead_letter_queue_as_its_source(local_sqs):
    url, _ = make_queue(local_sqs)
    with pytest.raises(ClientError) as caught:
        local_sqs.start_message_move_task(SourceArn=arn_of(local_sqs, url))
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_a_move_task_can_name_its_destination(local_sqs):
    url, dlq_url = make_queue(local_sqs, visibility=0, max_receive_count=1)
    other, _ = make_queue(local_sqs)
    local_sqs.send_message(QueueUrl=dlq_url, MessageBody="parked")
    local_sqs.start_message_move_task(SourceArn=arn_of(local_sqs, dlq_url), DestinationArn=arn_of(local_sqs, other))
    assert [m["Body"] for m in receive(local_sqs, other)] == ["parked"]
    assert receive(local_sqs, url) == []
