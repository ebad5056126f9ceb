"""The campaigns database on a local PostgreSQL: create it, migrate it, seed it, drop it.

One place for the bootstrap the demo, the benchmarks and the tests all need. Migrations are the
same files the deployment applies (`db_migrate`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from db_migrate.migrate import apply_migrations, create_database_if_missing
from local_pipeline.services import PostgresServer

# What a dialable campaign needs; tests and the demo add maxCps, maxConcurrentCalls and so on.
DIALABLE_CONFIG = {"audioFileUrl": "s3://ivr-audio/welcome.wav", "ivrFlow": {"start": "menu"}}


def prepare(server: PostgresServer, dbname: str, campaigns: Iterable[tuple[str, str, dict]] = ()) -> str:
    """Creates `dbname` if missing, applies the migrations, upserts `campaigns` (id, status,
    config); returns the database's DSN."""
    create_database_if_missing(server.params(dbname))
    dsn = server.dsn(dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
    seed_campaigns(dsn, campaigns)
    return dsn


def drop(server: PostgresServer, dbname: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@contextlib.contextmanager
def throwaway_database(
    server: PostgresServer, campaigns: Iterable[tuple[str, str, dict]] = (), prefix: str = "dialpipe"
) -> Iterator[str]:
    """A new, migrated database of its own (its name is yielded), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    prepare(server, name, campaigns)
    try:
        yield name
    finally:
        drop(server, name)


def seed_campaigns(dsn: str, campaigns: Iterable[tuple[str, str, dict]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for campaign_id, status, config in campaigns:
            conn.execute(
                "INSERT INTO campaigns (id, name, status, config) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, config = EXCLUDED.config, updated_at = now()",
                (campaign_id, f"Campaign {campaign_id}", status, Jsonb(config)),
            )


def set_campaign_status(dsn: str, campaign_id: str, status: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE campaigns SET status = %s, updated_at = now() WHERE id = %s", (status, campaign_id))


def add_to_do_not_call(dsn: str, phone_number: str, source: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO do_not_call (phone_number, source) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (phone_number, source),
        )


def clear_ledger(dsn: str) -> None:
    """Empties the call ledger (a demo's run starts from nothing: its callIds repeat every run)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE call_attempts, call_attempt_keys")
