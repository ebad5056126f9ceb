from __future__ import annotations

import pytest
from support.services import (
    fresh_database,
    postgres_server,
    purge_redis_keys,
    redis_key_prefix,
    redis_server,
    sqs_endpoint,
)

from dialer_worker.env import GATES_OFF, LATE_CHECK_OFF
from local_pipeline import database
from local_pipeline.run import LocalRun, favour_the_stand_in
from stacks.settings import DEV

# Some tests count calls per second at the worker stand-in: POSTs close to their slots.
favour_the_stand_in()

__all__ = ["fresh_database", "postgres_server", "redis_key_prefix", "redis_server", "sqs_endpoint"]

# No campaign cap: tests about live calls set their own (test_closed_loop.py).
GOOD_CONFIG = dict(database.DIALABLE_CONFIG)
# Faster than the deployed values, so a retried batch comes back in seconds: the queue and the
# pipe get the same override, everything else is the dev settings.
FAST = {"visibility_timeout_seconds": 2, "batching_window_seconds": 0.5, "parallel": 3}
# These tests are about the pipe, pacing and failures: the admission gates they are not about are
# switched off the documented way, GATES_OFF (test_compliance.py and test_closed_loop.py are about them).


@pytest.fixture
def late_check_off():
    """The late check's switch-off, for a test about something else: give it to the run's
    `dialer_overrides`."""
    return LATE_CHECK_OFF


@pytest.fixture
def local_run(postgres_server, fresh_database, redis_server):
    runs = []

    def make(campaigns=(("active", "active"),), postgres=None, dbname=None, redis=None, **options):
        """campaigns: (id, status) or (id, status, extra config)."""
        pg = postgres or postgres_server
        db = dbname or fresh_database
        database.prepare(pg, db, [(c[0], c[1], {**GOOD_CONFIG, **(c[2] if len(c) > 2 else {})}) for c in campaigns])
        options.setdefault("dialer_overrides", GATES_OFF)
        run = LocalRun(DEV, postgres=pg, dbname=db, redis=redis or redis_server, **{**FAST, **options})
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()
        purge_redis_keys(run.redis, run.key_prefix)


def tasks(n, campaign="active", start=0):
    return [
        {"campaignId": campaign, "contactId": f"{campaign}-{i}", "phoneNumber": f"+1415555{i:04d}", "attempts": 0}
        for i in range(start, start + n)
    ]
