"""A real rotation of a real role's password: the next batch succeeds after one fresh secret."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from db_migrate.migrate import apply_migrations
from enrich_dial_task.campaigns import CampaignStore, connect_with
from local_pipeline.services import ThrowawayPostgres

ROLE = "enrichment_app"


class RotatingSecret:
    """Secrets Manager and the per-container cache in front of it: `fetch()` reads the current
    password (counted); `params(refresh)` returns the cached copy unless asked to refresh."""

    def __init__(self, server, password: str) -> None:
        self.server = server
        self.current = password
        self.fetches = 0
        self._cached: str | None = None

    def fetch(self) -> str:
        self.fetches += 1
        return self.current

    def params(self, refresh: bool = False) -> dict:
        if refresh or self._cached is None:
            self._cached = self.fetch()
        return {
            "host": self.server.host,
            "port": self.server.port,
            "dbname": "postgres",
            "user": ROLE,
            "password": self._cached,
        }


@pytest.fixture(scope="module")
def password_cluster():
    """A private PostgreSQL that checks passwords (SCRAM-SHA-256 over TCP), with the campaigns
    table, one campaign, and a login role of the enrichment's own."""
    pg = ThrowawayPostgres(password="admin-secret").start()
    try:
        with psycopg.connect(**pg.server.params(), autocommit=True) as admin:
            apply_migrations(admin)
            admin.execute("INSERT INTO campaigns (id, name, status) VALUES ('c-1', 'one', 'active')")
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
            admin.execute(sql.SQL("GRANT SELECT ON campaigns, do_not_call TO {}").format(sql.Identifier(ROLE)))
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def password_postgres(password_cluster):
    """The cluster with the role's password back at 'password-1' and none of its sessions left."""
    rotate(password_cluster, "password-1")
    return password_cluster


def rotate(pg, new_password: str) -> None:
    """What the rotation function does, then what the proxy's idle timeout does to a client."""
    with psycopg.connect(**pg.server.params(), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(new_password)))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROLE,))


def test_the_server_checks_passwords(password_postgres):
    params = {**RotatingSecret(password_postgres.server, "password-1").params(), "password": "wrong"}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**params, connect_timeout=2)


def test_after_a_rotation_the_next_batch_succeeds_with_one_fresh_secret(password_postgres):
    secret = RotatingSecret(password_postgres.server, "password-1")
    store = CampaignStore(connect_with(secret.params), ttl_seconds=0)
    assert store.get_many(["c-1"])["c-1"].active
    assert secret.fetches == 1

    secret.current = "password-2"
    rotate(password_postgres, "password-2")

    # The reused connection is gone; the cached password is refused; one fetch, then it works.
    assert store.get_many(["c-1"])["c-1"].active
    assert secret.fetches == 2
    assert (store.reconnects, store.credential_refreshes) == (1, 1)
    # And it stays fine without fetching again.
    assert store.get_many(["c-1"])["c-1"].active
    assert secret.fetches == 2


def test_a_new_container_with_a_stale_cached_password_refreshes_once(password_postgres):
    secret = RotatingSecret(password_postgres.server, "password-1")
    secret.params()  # cached before the rotation
    secret.current = "password-2"
    rotate(password_postgres, "password-2")
    store = CampaignStore(connect_with(secret.params), ttl_seconds=0)
    assert store.get_many(["c-1"])["c-1"].active
    assert (secret.fetches, store.reconnects, store.credential_refreshes) == (2, 0, 1)


def test_a_wrong_password_after_the_refresh_is_raised_not_retried_again(password_postgres):
    secret = RotatingSecret(password_postgres.server, "not-the-password")
    store = CampaignStore(connect_with(secret.params), ttl_seconds=0)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        store.get_many(["c-1"])
    assert secret.fetches == 2
