"""The enrichment's read-only role: created by the migration without a password, given LOGIN and
the reader secret's password by the migration function, able to read campaigns and nothing more."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from db_migrate.migrate import READER_ROLE, apply_migrations, set_login
from enrich_dial_task.campaigns import CampaignStore, connect_with
from local_pipeline.services import ThrowawayPostgres


@pytest.fixture(scope="module")
def migrated():
    """Its own cluster, checking passwords: the role is cluster-wide, so the shared server never
    gets a login role with a password from a test."""
    pg = ThrowawayPostgres(password="admin-secret").start()
    try:
        with psycopg.connect(**pg.server.params()) as admin:
            apply_migrations(admin)
            admin.execute("INSERT INTO campaigns (id, name, status) VALUES ('c-1', 'one', 'active')")
        yield pg
    finally:
        pg.destroy()


def reader_params(pg, password):
    return {"host": pg.server.host, "port": pg.port, "dbname": "postgres", "user": READER_ROLE, "password": password}


def test_without_the_secret_the_role_cannot_log_in(migrated):
    with psycopg.connect(**migrated.server.params()) as admin:
        admin.execute(f"ALTER ROLE {READER_ROLE} NOLOGIN PASSWORD NULL")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**reader_params(migrated, "anything"), connect_timeout=2)


def test_the_reader_reads_campaigns_and_cannot_write(migrated):
    with psycopg.connect(**migrated.server.params()) as admin:
        set_login(admin, READER_ROLE, READER_ROLE, "reader-pw-1")
        logged = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (READER_ROLE,)).fetchone()[0]
    assert logged.startswith("SCRAM-SHA-256$"), "hashed before it reached the server"

    store = CampaignStore(connect_with(reader_params(migrated, "reader-pw-1")), ttl_seconds=0)
    assert store.get_many(["c-1"])["c-1"].active

    with psycopg.connect(**reader_params(migrated, "reader-pw-1"), autocommit=True) as reader:
        assert reader.execute("SHOW statement_timeout").fetchone()[0] == "2s", "set on the role, no SET needed"
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("UPDATE campaigns SET status = 'stopped'")
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE evil (x int)")


def test_the_migration_function_refuses_to_change_any_other_role(migrated):
    with psycopg.connect(**migrated.server.params()) as admin:
        with pytest.raises(ValueError, match="refusing"):
            set_login(admin, READER_ROLE, "postgres", "x")
