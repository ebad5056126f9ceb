"""The ledger writer's own role (migrations/0005): logged in as call_ledger_writer, the ledger's
every statement works (records merged, retries planned from the campaign's policy, a restore
read, orphans counted, retention run), and nothing else does: no do_not_call, no campaign
changed, no table dropped or created but through the owner's two partition functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from call_ledger import restore, retention, store
from call_ledger.records import AttemptRecord, OutcomeRecord
from call_ledger.retries import enqueue_retries
from db_migrate.migrate import READER_ROLE, WRITER_ROLE, apply_migrations, set_login
from local_pipeline.services import ThrowawayPostgres

NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = {"busy": {"afterSeconds": 600, "maxAttempts": 3}}


@pytest.fixture(scope="module")
def cluster():
    """Its own cluster, checking passwords: roles are cluster-wide, so the shared server never
    gets a login role with a password from a test."""
    pg = ThrowawayPostgres(password="admin-secret").start()
    try:
        with psycopg.connect(**pg.server.params(), autocommit=True) as admin:
            apply_migrations(admin)
            admin.execute(
                "INSERT INTO campaigns (id, name, status, config) VALUES ('c-1', 'one', 'active', %s)",
                (Jsonb({"audioFileUrl": "s3://a/b.wav", "ivrFlow": {"start": "menu"}, "retry": POLICY}),),
            )
            admin.execute("INSERT INTO do_not_call (phone_number) VALUES ('+15551230000')")
            set_login(admin, WRITER_ROLE, WRITER_ROLE, "writer-pw-1")
            set_login(admin, READER_ROLE, READER_ROLE, "reader-pw-1")
        yield pg
    finally:
        pg.destroy()


def login(pg, role, password):
    params = {**pg.server.params(), "user": role, "password": password}
    return psycopg.connect(**params, autocommit=True, connect_timeout=5)


@pytest.fixture
def writer(cluster):
    with login(cluster, WRITER_ROLE, "writer-pw-1") as conn:
        yield conn


def dialed(contact):
    body = {"campaignId": "c-1", "contactId": contact, "phoneNumber": "+15551234567", "attempts": 0}
    return AttemptRecord.dialed(
        campaign_id="c-1", contact_id=contact, attempt=0, phone_number="+15551234567", task=body, sent_at=NOW
    )


def test_the_writer_does_the_ledgers_work(writer):
    attempt = dialed("k-1")
    written = store.write(writer, [attempt, OutcomeRecord(attempt.call_id, "c-1", "busy", NOW, 3.0)], NOW)
    sent = []
    result = enqueue_retries(writer, written.call_ids, lambda tasks: sent.extend(tasks) or [], NOW)
    assert [t.parent_call_id for t in result.enqueued] == [attempt.call_id] and len(sent) == 1
    data = restore.restore_data(writer, NOW + timedelta(seconds=1), 3600, timedelta(hours=24))
    assert [c.call_id for c in data.claims] == [attempt.call_id]
    assert store.orphans(writer, timedelta(0), NOW + timedelta(days=1)) == 0


def test_the_writer_runs_retention_through_the_owners_functions(cluster, writer):
    with psycopg.connect(**cluster.server.params(), autocommit=True) as admin:
        admin.execute("SELECT call_attempts_add_month('2020-01-01T00:00:00Z')")
    old = datetime(2020, 1, 5, tzinfo=UTC)
    store.write(writer, [OutcomeRecord("old", "c-1", "busy", old)], old)
    result = retention.enforce(writer, NOW, retention_days=30)
    assert "call_attempts_y2020m01" in result.dropped and result.keys_deleted == 1
    assert f"call_attempts_y{NOW:%Y}m{NOW:%m}" in retention.partitions(writer), "this month is kept"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM do_not_call",
        "UPDATE campaigns SET status = 'stopped'",
        "DELETE FROM call_attempts",
        "DROP TABLE campaigns",
        "CREATE TABLE evil (x int)",
    ],
)
def test_the_writer_may_do_nothing_else(writer, statement):
    with pytest.raises(errors.InsufficientPrivilege):
        writer.execute(statement)


def test_a_partition_is_dropped_only_by_its_name_and_only_as_a_partition(writer):
    for name in ("campaigns", "call_attempts_default", "call_attempts_y1999m01"):
        with pytest.raises(errors.InvalidParameterValue):
            writer.execute("SELECT call_attempts_drop_month(%s)", (name,))
    with pytest.raises(errors.InsufficientPrivilege):
        writer.execute(f"DROP TABLE call_attempts_y{NOW:%Y}m{NOW:%m}")


def test_only_the_writer_may_call_the_partition_functions(cluster):
    with login(cluster, READER_ROLE, "reader-pw-1") as reader:
        for call in ("call_attempts_add_month(now())", "call_attempts_drop_month('call_attempts_y2020m01')"):
            with pytest.raises(errors.InsufficientPrivilege):
                reader.execute(f"SELECT {call}")


def test_the_migration_function_refuses_a_secret_naming_another_role(cluster):
    with psycopg.connect(**cluster.server.params(), autocommit=True) as admin:
        with pytest.raises(ValueError, match="refusing"):
            set_login(admin, WRITER_ROLE, READER_ROLE, "x")
        with pytest.raises(ValueError, match="not a role"):
            set_login(admin, "postgres", "postgres", "x")
