from __future__ import annotations

import pytest
from support.local_service import local_service as start_local_service

from local_pipeline.services import ThrowawayRedis


@pytest.fixture
def local_service(tmp_path, postgres_server, redis_server, monkeypatch):
    """The local pipeline `dialctl local up` runs, in this process, on a database of its own."""
    options = dict(max_cps=20, visibility_timeout_seconds=2, batching_window_seconds=0.5)
    with start_local_service(tmp_path, postgres_server, redis_server, monkeypatch, **options) as service:
        yield service


@pytest.fixture
def local_service_own_redis(tmp_path, postgres_server, monkeypatch):
    """The same, on a Redis of its own: every `dialctl status` SCANs the whole keyspace for the
    campaigns' keys, and the shared Redis holds every other run's keys (a status there takes
    seconds on a loaded machine, not milliseconds)."""
    redis = ThrowawayRedis().start()
    options = dict(max_cps=20, visibility_timeout_seconds=2, batching_window_seconds=0.5)
    try:
        with start_local_service(tmp_path, postgres_server, redis.server, monkeypatch, **options) as service:
            yield service
    finally:
        redis.destroy()
