"""The enrichment's connections through a proxy that refuses startup options, as RDS Proxy does."""

from __future__ import annotations

import psycopg
import pytest
from support.startup_proxy import REFUSAL, StartupOptionsRefusingProxy

from enrich_dial_task.campaigns import STATEMENT_TIMEOUT_MS, CampaignStore, connect_with


@pytest.fixture
def rds_like_proxy(campaigns_db):
    server = campaigns_db.server
    with StartupOptionsRefusingProxy(server.host, server.port) as proxy:
        yield proxy


def test_the_proxy_refuses_startup_options_as_rds_proxy_does(campaigns_db, rds_like_proxy):
    params = {
        **campaigns_db.server.params(campaigns_db.dbname),
        "host": rds_like_proxy.host,
        "port": rds_like_proxy.port,
    }
    with pytest.raises(psycopg.OperationalError, match="command-line options") as caught:
        psycopg.connect(**params, options="-c statement_timeout=2000", connect_timeout=2)
    assert REFUSAL in str(caught.value)
    with psycopg.connect(**params, connect_timeout=2) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert (rds_like_proxy.refused, rds_like_proxy.forwarded) == (1, 1)


def test_campaigns_load_through_the_proxy_with_the_statement_timeout_set(campaigns_db, rds_like_proxy):
    campaigns_db("c-1")
    params = {
        **campaigns_db.server.params(campaigns_db.dbname),
        "host": rds_like_proxy.host,
        "port": rds_like_proxy.port,
    }
    store = CampaignStore(connect_with(params), ttl_seconds=0)
    assert store.get_many(["c-1"])["c-1"].active
    assert rds_like_proxy.refused == 0
    # The timeout still bounds every query on the enrichment's connection.
    timeout = store._conn.execute("SHOW statement_timeout").fetchone()[0]
    assert timeout == f"{STATEMENT_TIMEOUT_MS // 1000}s"
