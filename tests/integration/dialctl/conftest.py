from __future__ import annotations

import pytest
from support.local_service import local_service as start_local_service


@pytest.fixture
def local_service(tmp_path, postgres_server, redis_server, monkeypatch):
    """The local pipeline `dialctl local up` runs, in this process, on a database of its own."""
    options = dict(max_cps=20, visibility_timeout_seconds=2, batching_window_seconds=0.5)
    with start_local_service(tmp_path, postgres_server, redis_server, monkeypatch, **options) as service:
        yield service
