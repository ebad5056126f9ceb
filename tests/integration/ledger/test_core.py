"""The ledger function's core against real PostgreSQL and the local SQS endpoint: records from
the records queue become rows, the retries they call for go to the dial-tasks queue, bad
messages are counted drops, a database error fails the batch, and the retention event runs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from call_ledger import core
from call_ledger.clients import LedgerClients, LedgerDatabase
from call_ledger.env import LedgerEnv
from call_ledger.records import AttemptRecord, OutcomeRecord, RecordDropReason, to_json
from local_pipeline.sqs_local import LocalSqsServer
from shared.dial_task import call_id_for
from shared.drops import DropReason
from shared.postgres import params_source

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
# Ended long enough ago that the retry is due at once (no DelaySeconds to wait out).
ENDED = NOW - timedelta(seconds=30)
CONFIG = {
    "audioFileUrl": "s3://a/b.wav",
    "ivrFlow": {"start": "menu"},
    "retry": {"no_answer": {"afterSeconds": 5, "maxAttempts": 2}},
}


@pytest.fixture(scope="module")
def sqs_server():
    server = LocalSqsServer().start()
    yield server
    server.stop()


@pytest.fixture
def dial_tasks(sqs_server):
    return sqs_server.create_queues(f"dial-{uuid.uuid4().hex[:8]}", max_receive_count=5, visibility_timeout_seconds=30)


def ledger_env(postgres_server, dbname, queue_url, **overrides):
    fields = dict(
        host=postgres_server.host,
        port=postgres_server.port,
        name=dbname,
        user=postgres_server.user,
        password=postgres_server.password or "",
        redis_host="127.0.0.1",
        redis_port=6379,
        dial_tasks_queue_url=queue_url,
        call_record_retention_days=30,
        claim_ttl_seconds=600,
    )
    return LedgerEnv(**{**fields, **overrides})


@pytest.fixture
def ledger(postgres_server, fresh_database, ledger_dsn, dial_tasks, conn, seed_campaign):
    seed_campaign(conn, "c-1", "active", CONFIG)
    env = ledger_env(postgres_server, fresh_database, dial_tasks.queue_url)
    clients = LedgerClients(database=LedgerDatabase(params_source(env)), sqs_factory=lambda: dial_tasks.client)
    yield env, clients
    clients.close()


def dialed(contact="k-1", attempt=0):
    body = {"campaignId": "c-1", "contactId": contact, "phoneNumber": "+14155550100", "attempts": attempt}
    return AttemptRecord.dialed(
        campaign_id="c-1", contact_id=contact, attempt=attempt, phone_number="+14155550100", task=body, sent_at=NOW
    )


def event(*bodies):
    return {"Records": [{"messageId": f"m-{i}", "body": body} for i, body in enumerate(bodies)]}


def received(queues):
    reply = queues.client.receive_message(
        QueueUrl=queues.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
    )
    return reply.get("Messages", [])


def rows(conn):
    return conn.execute(
        "SELECT call_id, parent_call_id, attempt, disposition, reason, outcome FROM call_attempts ORDER BY attempt"
    ).fetchall()


def test_records_become_one_row_each_and_an_ended_call_its_one_retry(ledger, conn, dial_tasks):
    env, clients = ledger
    attempt = dialed()
    outcome = OutcomeRecord(attempt.call_id, "c-1", "no_answer", ENDED, 0.0)
    response, report = core.process(event(to_json(attempt), to_json(outcome)), env, clients, now=NOW)
    assert response == {"batchItemFailures": []}
    assert (report.written, report.merged, len(report.retries.enqueued)) == (1, 1, 1)
    # Redelivered, both records: no new row, no second retry.
    response, report = core.process(event(to_json(attempt), to_json(outcome)), env, clients, now=NOW)
    assert (report.written, report.merged, len(report.retries.enqueued)) == (0, 2, 0)
    retry_id = call_id_for("c-1", "k-1", 1)
    assert rows(conn) == [
        (attempt.call_id, None, 0, "dialed", None, "no_answer"),
        (retry_id, attempt.call_id, 1, None, None, None),
    ]
    messages = received(dial_tasks)
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["attempts"] == 1 and body["notBefore"] == (ENDED + timedelta(seconds=5)).isoformat()
    assert messages[0]["Attributes"]["MessageGroupId"] == "c-1"


def test_bad_messages_are_counted_drops_never_errors(ledger, conn):
    env, clients = ledger
    good = AttemptRecord.dropped(
        campaign_id="c-1", contact_id="k-2", attempt=0, reason=DropReason.DO_NOT_CALL, dropped_at=NOW
    )
    unknown = json.dumps({"kind": "nonsense", "v": 1})
    # A restore request with a malformed epoch is dropped like any bad record, never carried out.
    restore = json.dumps({"kind": "restore", "v": 1, "epoch": "e", "requestedAt": NOW.isoformat()})
    response, report = core.process(event("not json", "[]", unknown, restore, to_json(good)), env, clients, now=NOW)
    assert response == {"batchItemFailures": []}
    assert report.dropped_by_reason == {
        RecordDropReason.INVALID_JSON: 1,
        RecordDropReason.NOT_AN_OBJECT: 1,
        RecordDropReason.UNKNOWN_KIND: 1,
        RecordDropReason.INVALID_TIME: 1,
    }
    assert report.restores == []
    assert rows(conn) == [(good.call_id, None, 0, "dropped", "do_not_call", None)]


def test_an_outcome_before_its_attempt_is_an_orphan_until_the_attempt_comes(ledger, conn):
    env, clients = ledger
    attempt = dialed("k-3")
    outcome = OutcomeRecord(attempt.call_id, "c-1", "answered", ENDED, 20.0)
    _, report = core.process(event(to_json(outcome)), env, clients, now=NOW)
    assert report.orphans == 0  # not yet old enough to count
    _, report = core.process(event(), env, clients, now=NOW + core.ORPHAN_AFTER * 2)
    _, report = core.process(event(to_json(dialed("k-4"))), env, clients, now=NOW + core.ORPHAN_AFTER * 2)
    assert report.orphans == 1
    _, report = core.process(event(to_json(attempt)), env, clients, now=NOW + core.ORPHAN_AFTER * 2)
    assert report.orphans == 0 and report.retries.enqueued == []  # answered: never retried


def test_a_retry_that_cannot_be_sent_fails_its_records(ledger, conn):
    env, _ = ledger

    class Refusing:
        def send_message_batch(self, QueueUrl, Entries):
            return {"Failed": [{"Id": e["Id"], "Code": "x"} for e in Entries], "Successful": []}

    clients = LedgerClients(database=LedgerDatabase(params_source(env)), sqs_factory=Refusing)
    attempt = dialed("k-5")
    outcome = OutcomeRecord(attempt.call_id, "c-1", "no_answer", ENDED, 0.0)
    response, report = core.process(event(to_json(attempt), to_json(outcome)), env, clients, now=NOW)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}
    assert conn.execute(
        "SELECT retry_call_id FROM call_attempts WHERE call_id = %s", (attempt.call_id,)
    ).fetchone() == (None,)
    clients.close()


def test_a_database_error_fails_the_whole_batch(postgres_server, dial_tasks):
    env = ledger_env(postgres_server, "no_such_database_here", dial_tasks.queue_url)
    clients = LedgerClients(database=LedgerDatabase(params_source(env)), sqs_factory=lambda: dial_tasks.client)
    with pytest.raises(psycopg.OperationalError):
        core.process(event(to_json(dialed())), env, clients, now=NOW)


def test_the_retention_event_drops_old_months_and_creates_the_next(ledger, conn):
    env, clients = ledger
    response, report = core.process({"retention": True}, env, clients, now=NOW)
    assert report.retention is not None
    assert set(response) == {"dropped", "created"}
    months = {r[0] for r in conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid")}
    assert "call_attempts_y2027m03" in months


def test_a_restore_request_puts_the_ledgers_claims_back_before_the_batchs_records(
    postgres_server, fresh_database, dial_tasks, conn, redis_server, redis_key_prefix
):
    from shared.redis_client import redis_client
    from shared.redis_keys import claim_key, restored_key
    from shared.restore_request import RestoreRequest

    env = ledger_env(
        postgres_server, fresh_database, dial_tasks.queue_url,
        redis_host=redis_server.host, redis_port=redis_server.port, redis_key_prefix=redis_key_prefix,
    )  # fmt: skip
    redis = redis_client(env.redis)
    clients = LedgerClients(
        database=LedgerDatabase(params_source(env)),
        sqs_factory=lambda: dial_tasks.client,
        redis=redis,
        recipient_key=b"the-dialers-hash-key",
    )
    try:
        sent = dialed()
        core.process(event(to_json(sent)), env, clients, now=NOW)
        request = RestoreRequest("1764666000000001", NOW).to_json()
        _, report = core.process(event(request, to_json(dialed(contact="k-2"))), env, clients, now=NOW)
        # k-1's claim and its number's count (k-2 is written after the restore).
        assert [(r.claims, r.recipients) for r in report.restores] == [(1, 1)]
        assert report.written == 1 and report.drops == []
        assert redis.exists(claim_key(redis_key_prefix, sent.call_id))
        assert redis.exists(restored_key(redis_key_prefix, "1764666000000001"))
    finally:
        clients.close()
