"""Fixtures for the layers that run against services (integration, e2e): the PostgreSQL and Redis
servers for the whole session, a fresh database and a Redis key prefix per test, moto's SQS server.

The servers that answer on the usual ports are reused; where none answers, a throwaway one is
started from the installed binaries and removed at the end. Under pytest-xdist each worker is its
own session, so each worker reuses the shared server or starts a throwaway one of its own (on a
free port); tests never share a database or a key prefix, so workers never see each other's data.

Only those layers' conftest.py import this module, so the unit layer loads no database driver,
Redis client or local pipeline (tests/unit/test_isolation.py holds it to that).
"""

from __future__ import annotations

import uuid

import pytest

from db_migrate.migrate import create_database_if_missing
from local_pipeline import database, services

__all__ = ["fresh_database", "postgres_server", "purge_redis_keys", "redis_key_prefix", "redis_server", "sqs_endpoint"]


@pytest.fixture(scope="session")
def postgres_server():
    server, throwaway = services.reuse_or_start_postgres()
    yield server
    if throwaway is not None:
        throwaway.destroy()


@pytest.fixture(scope="session")
def redis_server():
    server, throwaway = services.reuse_or_start_redis()
    yield server
    if throwaway is not None:
        throwaway.destroy()


@pytest.fixture
def fresh_database(postgres_server):
    """A new, empty database of its own for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    create_database_if_missing({**postgres_server.params(), "dbname": name})
    yield name
    database.drop(postgres_server, name)


def purge_redis_keys(server: services.RedisServer, prefix: str) -> None:
    """Removes every key under `{prefix}` from `server` (nothing if it no longer answers). Claims
    are kept for days: left behind, every run's would pile up in the shared Redis, and whatever
    SCANs it (`dialctl status`, a test that loses every key of its run) slows down with them."""
    import redis

    if not services.port_answers(server.port, server.host):
        return  # a throwaway Redis the test stopped: its keys went with it
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=10, socket_connect_timeout=2)
    try:
        # The prefixes are uuid hex: nothing in them that SCAN's MATCH would read as a pattern.
        keys = list(client.scan_iter(match="{" + prefix + "}*", count=10_000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
    finally:
        client.close()


@pytest.fixture
def redis_key_prefix(request):
    """A key prefix of its own for one test, so tests sharing a Redis never see each other's keys;
    its keys on the session's Redis are removed afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    if "redis_server" in request.fixturenames:
        purge_redis_keys(request.getfixturevalue("redis_server"), prefix)


@pytest.fixture(scope="session")
def sqs_endpoint():
    """moto's SQS server: the AWS emulator the dialer's deferrals are tested against, and the
    reference the local pipeline's own SQS endpoint is held to."""
    from moto.server import ThreadedMotoServer

    port = services.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
