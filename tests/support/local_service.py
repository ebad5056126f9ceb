"""The service `dialctl local up` runs (dialctl/local_up.py), in the test's process, for the tests
that drive dialctl against it: on a database of its own, with the legal calling hours always open.

The calling hours are the one gate that depends on the time of day: these tests dial San Francisco
numbers (+1 415), outside 08:00-21:00 local time for eleven hours of every day. They are about
dialctl and the pipe, not the calling window (tests/e2e/test_compliance.py is), so that gate is
switched off the documented way; the others stay as the environment sets them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from dialctl.local_up import LocalService
from dialer_worker.env import GATES_OFF
from local_pipeline import database
from stacks import settings
from support.services import purge_redis_keys


@contextmanager
def local_service(tmp_path, postgres_server, redis_server, monkeypatch, **options) -> Iterator[LocalService]:
    """Started on the session's servers; the dialctl commands find it through its state file, as
    they would a `local up` in another terminal. `options`: LocalService's keyword arguments."""
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    always_open = dataclasses.replace(settings.DEV, calling_hours=str(GATES_OFF["calling_hours"]))
    dbname = f"dialctl_{uuid.uuid4().hex[:10]}"
    service = LocalService(tmp_path / "state.json", settings=always_open, dbname=dbname, **options)
    service.start()
    prefix = service.run.key_prefix
    try:
        yield service
    finally:
        service.stop()
        database.drop(postgres_server, dbname)
        purge_redis_keys(redis_server, prefix)
