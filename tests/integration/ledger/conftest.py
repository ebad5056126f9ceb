from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db_migrate.migrate import apply_migrations


@pytest.fixture
def ledger_dsn(postgres_server, fresh_database):
    """A fresh database with every migration applied, the ledger's included."""
    dsn = postgres_server.dsn(fresh_database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
    return dsn


@pytest.fixture
def conn(ledger_dsn):
    with psycopg.connect(ledger_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def seed_campaign():
    """Upserts a campaign: seed_campaign(conn, id, status, config)."""
    return _seed_campaign


def _seed_campaign(conn: psycopg.Connection, campaign_id: str, status: str = "active", config: dict | None = None):
    conn.execute(
        "INSERT INTO campaigns (id, name, status, config) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, config = EXCLUDED.config",
        (campaign_id, f"Campaign {campaign_id}", status, Jsonb(config or {})),
    )
