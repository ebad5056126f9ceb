"""CampaignStore against real PostgreSQL: one query per batch, cache, TTL, faults."""

from __future__ import annotations

import psycopg
import pytest

from db_migrate.migrate import apply_migrations
from enrich_dial_task.campaigns import CampaignStore, connect_with
from local_pipeline.services import ThrowawayPostgres


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def store_for(db, ttl=5.0, clock=None):
    return CampaignStore(lambda: psycopg.connect(db.dsn, autocommit=True), ttl_seconds=ttl, clock=clock or Clock())


def test_many_campaigns_load_in_one_query(campaigns_db):
    for i in range(5):
        campaigns_db(f"c-{i}")
    store = store_for(campaigns_db)
    found = store.get_many([f"c-{i}" for i in range(5)] + ["nope"])
    assert store.queries == 1
    assert {k for k, v in found.items() if v} == {f"c-{i}" for i in range(5)}
    assert found["nope"] is None


def test_cache_hit_until_ttl_then_reload(campaigns_db):
    campaigns_db("c-1")
    clock = Clock()
    store = store_for(campaigns_db, ttl=5, clock=clock)
    assert store.get_many(["c-1"])["c-1"].active
    campaigns_db("c-1", status="paused")
    clock.now += 4.9
    assert store.get_many(["c-1"])["c-1"].active, "still cached inside the TTL"
    assert store.queries == 1
    clock.now += 0.2
    assert not store.get_many(["c-1"])["c-1"].active, "reloaded after the TTL"
    assert store.queries == 2


def test_ttl_zero_disables_the_cache(campaigns_db):
    campaigns_db("c-1")
    store = store_for(campaigns_db, ttl=0)
    store.get_many(["c-1"])
    store.get_many(["c-1"])
    assert store.queries == 2


def test_only_missing_ids_are_queried(campaigns_db):
    campaigns_db("a")
    campaigns_db("b")
    store = store_for(campaigns_db)
    store.get_many(["a"])
    found = store.get_many(["a", "b"])
    assert store.queries == 2 and found["b"].id == "b"


@pytest.mark.parametrize(
    "evil",
    ["x' OR '1'='1", "'; DROP TABLE campaigns; --", "c-1\\'; SELECT pg_sleep(5); --", "%s", "$1"],
)
def test_sql_injection_strings_are_just_ids(campaigns_db, evil):
    campaigns_db("c-1")
    store = store_for(campaigns_db)
    assert store.get_many([evil]) == {evil: None}
    with psycopg.connect(campaigns_db.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 1


def test_database_down_raises_then_recovers():
    pg = ThrowawayPostgres().start()
    try:
        dsn = pg.server.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
            conn.execute("INSERT INTO campaigns (id, name, status) VALUES ('c-1', 'one', 'active')")
        params = {"host": pg.server.host, "port": pg.port, "dbname": "postgres", "user": "postgres"}
        store = CampaignStore(connect_with(params), ttl_seconds=0)
        assert store.get_many(["c-1"])["c-1"].active
        pg.stop()
        with pytest.raises(psycopg.OperationalError):
            store.get_many(["c-1"])
        with pytest.raises(psycopg.OperationalError):
            store.get_many(["c-1"])  # still down: a fresh connect fails fast
        pg.start()
        assert store.get_many(["c-1"])["c-1"].active
    finally:
        pg.destroy()
