from __future__ import annotations

import dataclasses
import uuid

import pytest

from dialctl.local_up import LocalService
from local_pipeline import database
from stacks.settings import settings_for


@pytest.fixture
def local_service(tmp_path, postgres_server, redis_server, monkeypatch):
    """The local pipeline `dialctl local up` runs, in this process, on a database of its own; the
    dialctl commands find it through its state file, as they would a `local up` in another terminal."""
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    dbname = f"dialctl_{uuid.uuid4().hex[:10]}"
    # Calls at any hour of the test run: dev's legal hours (08:00-21:00 in the recipient's zone)
    # would make the tests that wait for dials fail at night.
    settings = settings_for("dev")
    settings = dataclasses.replace(settings, calling_hours="00:00-24:00")
    service = LocalService(tmp_path / "state.json", max_cps=20, dbname=dbname, visibility_timeout_seconds=2,
                           batching_window_seconds=0.5, settings=settings)  # fmt: skip
    service.start()
    yield service
    service.stop()
    database.drop(postgres_server, dbname)
