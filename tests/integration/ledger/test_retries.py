"""Retries from recorded outcomes against real PostgreSQL: exactly one per ended call, however
often or in whatever order its records arrive; none where the rules say none."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import psycopg
import pytest

from call_ledger import store
from call_ledger.records import AttemptRecord, OutcomeRecord
from call_ledger.retries import RetryTask, Skip, enqueue_retries, sqs_enqueue
from shared.dial_task import call_id_for
from shared.drops import DropReason

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ENDED = NOW + timedelta(seconds=40)
POLICY = {"busy": {"afterSeconds": 600, "maxAttempts": 3}, "no_answer": {"afterSeconds": 0, "maxAttempts": 2}}
CONFIG = {"audioFileUrl": "s3://a/b.wav", "ivrFlow": {"start": "menu"}, "retry": POLICY}


class Queue:
    """An Enqueue that keeps what it was given; `fail` makes it refuse every task once."""

    def __init__(self):
        self.sent = []
        self.fail = False

    def __call__(self, tasks):
        if self.fail:
            self.fail = False
            return [t.call_id for t in tasks]
        self.sent.extend(tasks)
        return []


def dialed(contact="k-1", attempt=0, campaign="c-1"):
    body = {
        "campaignId": campaign,
        "contactId": contact,
        "phoneNumber": "+15551234567",
        "attempts": attempt,
        "x": {"y": 1},
    }
    return AttemptRecord.dialed(
        campaign_id=campaign, contact_id=contact, attempt=attempt, phone_number="+15551234567", task=body, sent_at=NOW
    )


def ended(record, outcome="busy"):
    return OutcomeRecord(record.call_id, record.campaign_id, outcome, ENDED, 12.0)


def write_and_retry(conn, records, queue):
    written = store.write(conn, records, NOW)
    return enqueue_retries(conn, written.call_ids, queue, NOW)


@pytest.fixture
def campaign(conn, seed_campaign):
    seed_campaign(conn, "c-1", "active", CONFIG)


def test_a_busy_call_is_retried_once_with_its_body_attempts_and_not_before(conn, campaign):
    queue = Queue()
    attempt = dialed()
    result = write_and_retry(conn, [attempt, ended(attempt)], queue)
    (task,) = queue.sent
    assert result.enqueued == [task]
    assert task.call_id == call_id_for("c-1", "k-1", 1) and task.campaign_id == "c-1"
    assert json.loads(task.body) == {**attempt.task, "attempts": 1, "notBefore": "2026-12-02T09:10:40+00:00"}

    # Redelivered, alone and together with its attempt: no second retry.
    for again in ([ended(attempt)], [attempt, ended(attempt)]):
        assert write_and_retry(conn, again, queue).enqueued == []
    assert len(queue.sent) == 1

    parent, child = conn.execute(
        "SELECT call_id, parent_call_id, retry_call_id, attempt, disposition FROM call_attempts ORDER BY attempt"
    ).fetchall()
    assert parent == (attempt.call_id, None, task.call_id, 0, "dialed")
    assert child == (task.call_id, attempt.call_id, None, 1, None), "the retry's row points to its parent"


def test_an_outcome_that_came_first_is_retried_when_its_attempt_arrives(conn, campaign):
    queue = Queue()
    attempt = dialed()
    assert write_and_retry(conn, [ended(attempt)], queue).enqueued == []
    assert len(write_and_retry(conn, [attempt], queue).enqueued) == 1


def test_the_retrys_own_record_merges_into_the_row_that_points_to_its_parent(conn, campaign):
    queue = Queue()
    attempt = dialed()
    write_and_retry(conn, [attempt, ended(attempt)], queue)
    retry = dialed(attempt=1)
    write_and_retry(conn, [retry], queue)
    row = conn.execute(
        "SELECT parent_call_id, disposition FROM call_attempts WHERE call_id = %s", (retry.call_id,)
    ).fetchone()
    assert row == (attempt.call_id, "dialed")
    assert conn.execute("SELECT count(*) FROM call_attempts").fetchone()[0] == 2


def test_an_outcomes_cap_ends_the_chain(conn, campaign):
    queue = Queue()
    for attempt_no in range(3):
        attempt = dialed(attempt=attempt_no)
        write_and_retry(conn, [attempt, ended(attempt)], queue)
    # busy maxAttempts 3: retried after attempts 0 and 1; the third busy is the last.
    assert [t.attempt for t in queue.sent] == [1, 2]


def test_each_outcome_counts_its_own_cap(conn, campaign):
    queue = Queue()
    for attempt_no, outcome in enumerate(["busy", "busy", "no_answer", "no_answer"]):
        attempt = dialed(attempt=attempt_no)
        write_and_retry(conn, [attempt, ended(attempt, outcome)], queue)
    assert [t.attempt for t in queue.sent] == [1, 2, 3]


@pytest.mark.parametrize(
    "status, config, outcome, skipped",
    [
        ("active", CONFIG, "answered", Skip.NOT_RETRIED),
        ("active", CONFIG, "rejected", Skip.NOT_RETRIED),
        ("active", CONFIG, "machine", Skip.NOT_RETRIED),
        ("stopped", CONFIG, "busy", Skip.CAMPAIGN_INACTIVE),
        (
            "active",
            {**CONFIG, "retry": {"busy": {"afterSeconds": -5, "maxAttempts": 2}}},
            "busy",
            Skip.CAMPAIGN_MISCONFIGURED,
        ),
        ("active", {k: v for k, v in CONFIG.items() if k != "retry"}, "busy", Skip.NO_POLICY),
    ],
)
def test_no_retry_where_the_rules_say_none(conn, seed_campaign, status, config, outcome, skipped):
    seed_campaign(conn, "c-1", status, config)
    queue = Queue()
    attempt = dialed()
    result = write_and_retry(conn, [attempt, ended(attempt, outcome)], queue)
    assert queue.sent == [] and result.skipped == {skipped: 1}


def test_a_paused_campaigns_calls_are_still_retried_the_dialer_defers_them(conn, seed_campaign):
    seed_campaign(conn, "c-1", "paused", CONFIG)
    queue = Queue()
    attempt = dialed()
    assert len(write_and_retry(conn, [attempt, ended(attempt)], queue).enqueued) == 1


def test_a_dropped_task_or_an_unknown_campaign_is_never_retried(conn, campaign):
    queue = Queue()
    dropped = AttemptRecord.dropped(
        campaign_id="c-1", contact_id="k-1", attempt=0, reason=DropReason.EXPIRED, dropped_at=NOW
    )
    orphan = OutcomeRecord(str(uuid.uuid4()), "c-1", "busy", ENDED)
    elsewhere = dialed(campaign="c-unknown")
    result = write_and_retry(conn, [dropped, ended(dropped), orphan, elsewhere, ended(elsewhere)], queue)
    assert queue.sent == [] and result.skipped == {Skip.UNKNOWN_CAMPAIGN: 1}


def test_a_send_that_fails_leaves_nothing_marked_and_the_redelivery_retries(conn, campaign):
    queue = Queue()
    queue.fail = True
    attempt = dialed()
    first = write_and_retry(conn, [attempt, ended(attempt)], queue)
    assert first.failed == [attempt.call_id] and first.enqueued == []
    assert conn.execute("SELECT count(*) FROM call_attempts WHERE retry_call_id IS NOT NULL").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM call_attempts").fetchone()[0] == 1, "the retry's row went too"

    second = write_and_retry(conn, [ended(attempt)], queue)
    assert len(second.enqueued) == 1 and second.failed == []


def test_a_send_that_raises_rolls_the_mark_back(conn, campaign):
    def broken(tasks):
        raise ConnectionError("SQS unreachable")

    attempt = dialed()
    written = store.write(conn, [attempt, ended(attempt)], NOW)
    with pytest.raises(ConnectionError):
        enqueue_retries(conn, written.call_ids, broken, NOW)
    assert conn.execute("SELECT count(*) FROM call_attempts WHERE retry_call_id IS NOT NULL").fetchone()[0] == 0


def test_two_writers_of_one_ended_call_at_once_send_one_retry(ledger_dsn, seed_campaign):
    with psycopg.connect(ledger_dsn, autocommit=True) as conn:
        seed_campaign(conn, "c-1", "active", CONFIG)
        attempt = dialed()
        call_ids = store.write(conn, [attempt, ended(attempt)], NOW).call_ids
    release = threading.Event()
    sent = []

    def slow_queue(tasks):
        release.wait(30)
        sent.extend(tasks)
        return []

    results = {}

    def writer(name):
        with psycopg.connect(ledger_dsn, autocommit=True) as conn:
            results[name] = enqueue_retries(conn, call_ids, slow_queue, NOW)

    first = threading.Thread(target=writer, args=("first",))
    first.start()
    with psycopg.connect(ledger_dsn, autocommit=True) as watcher:
        for _ in range(200):  # until the first holds the mark, waiting in its send
            if watcher.execute("SELECT count(*) FROM call_attempts WHERE retry_call_id IS NOT NULL").fetchone()[0] == 0:
                locked = watcher.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s USING (pid)"
                    " WHERE s.datname = current_database() AND s.state = 'idle in transaction'"
                ).fetchone()[0]
                if locked:
                    break
            threading.Event().wait(0.05)
        second = threading.Thread(target=writer, args=("second",))
        second.start()
        for _ in range(200):  # until the second waits on the first's lock
            if watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]:
                break
            threading.Event().wait(0.05)
    release.set()
    first.join(30)
    second.join(30)
    assert len(sent) == 1
    assert sorted(len(r.enqueued) for r in results.values()) == [0, 1]


def test_sqs_enqueue_sends_with_the_campaign_as_group_and_waits_in_the_queue(sqs_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sqs = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"dial-tasks-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    due_now = RetryTask("p-1", "r-1", "c-1", "k-1", 1, '{"a":1}', NOW - timedelta(seconds=5))
    due_later = RetryTask("p-2", "r-2", "c-2", "k-2", 1, '{"a":2}', NOW + timedelta(hours=1))
    enqueue = sqs_enqueue(sqs, url, lambda: NOW)
    assert enqueue([due_now, due_later]) == []
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"])["Messages"]
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in received] == [('{"a":1}', "c-1")]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1", "the later one waits its 900 s"
