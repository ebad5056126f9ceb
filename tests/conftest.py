"""Shared fixtures: real PostgreSQL and Redis servers for the whole session.

The servers that answer on the usual ports are reused; where none answers, a throwaway one
is started from the installed binaries and removed at the end.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from db_migrate.migrate import create_database_if_missing
from local_pipeline import database, services

ROOT = Path(__file__).resolve().parent.parent
# Each folder directly under tests/ is one layer, and its tests carry that layer's marker.
LAYERS = {"unit": "unit", "integration": "integration", "infrastructure": "infra", "e2e": "e2e"}

# Powertools needs these to emit metrics outside Lambda; the values are the tests' own.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "DialPipeline/test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        layer = Path(item.path).resolve().relative_to(tests_dir).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of the layers {sorted(LAYERS)}")
        item.add_marker(LAYERS[layer])


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


@pytest.fixture
def redis_key_prefix():
    """A key prefix of its own for one test, so tests sharing a Redis never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"


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
