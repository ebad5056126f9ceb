from __future__ import annotations

import psycopg
import pytest

from db_migrate.migrate import apply_migrations
from local_pipeline.run import LocalRun, seed_campaigns
from stacks.settings import DEV

GOOD_CONFIG = {"audioFileUrl": "s3://ivr-audio/hello.wav", "ivrFlow": {"start": "menu"}, "maxConcurrentCalls": 5}
# Faster than the deployed values, so a retried batch comes back in seconds: the queue and the
# pipe get the same override, everything else is the dev settings.
FAST = {"visibility_timeout_seconds": 2, "batching_window_seconds": 0.5, "parallel": 3}


def migrate(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)


@pytest.fixture
def local_run(postgres_server, fresh_database, redis_server):
    runs = []

    def make(campaigns=(("active", "active"),), postgres=None, dbname=None, redis=None, **options):
        pg = postgres or postgres_server
        db = dbname or fresh_database
        migrate(pg.dsn(db))
        seed_campaigns(pg.dsn(db), [(cid, status, GOOD_CONFIG) for cid, status in campaigns])
        run = LocalRun(DEV, postgres=pg, dbname=db, redis=redis or redis_server, **{**FAST, **options})
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()


def tasks(n, campaign="active", start=0):
    return [
        {"campaignId": campaign, "contactId": f"{campaign}-{i}", "phoneNumber": f"+1415555{i:04d}", "attempts": 0}
        for i in range(start, start + n)
    ]
