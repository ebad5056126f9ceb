"""CampaignStore's retries with in-memory connections: once for a lost connection, once with
fresh credentials for a refused password, never for anything else."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from enrich_dial_task.campaigns import CampaignStore
from shared.postgres import is_authentication_failure

ROW = ("campaign", "c-1", "one", "active", {"audioFileUrl": "a", "ivrFlow": {}})
AUTH_FAILED = psycopg.OperationalError(
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    'FATAL:  password authentication failed for user "app"'
)
REFUSED = psycopg.OperationalError(
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'
)
SERVER_CLOSED = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")


class FakeCursor:
    def __init__(self, rows):
        self._rows = rows

    def fetchall(self):
        return self._rows


class FakeConnection:
    """Answers ROW, or raises `fails_with` (and is then broken when `breaks`)."""

    def __init__(self, fails_with=None, breaks=False):
        self.fails_with = fails_with
        self.breaks = breaks
        self.closed = False
        self.broken = False

    def execute(self, query, params):
        if self.fails_with is not None:
            self.broken = self.breaks
            raise self.fails_with
        return FakeCursor([ROW])

    def close(self):
        self.closed = True


class FakeConnect:
    """Hands out the scripted outcomes in order (a FakeConnection, or an exception to raise) and
    records whether each call asked for fresh credentials."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[bool] = []

    def __call__(self, refresh_credentials=False):
        self.calls.append(refresh_credentials)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def store_with(connect):
    return CampaignStore(connect, ttl_seconds=0, clock=lambda: 0.0)


def test_a_refused_password_is_retried_once_with_fresh_credentials():
    connect = FakeConnect(AUTH_FAILED, FakeConnection())
    store = store_with(connect)
    assert store.get_many(["c-1"])["c-1"].active
    assert connect.calls == [False, True]
    assert (store.reconnects, store.credential_refreshes) == (0, 1)


def test_a_password_refused_twice_is_raised():
    connect = FakeConnect(AUTH_FAILED, AUTH_FAILED)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        store_with(connect).get_many(["c-1"])
    assert connect.calls == [False, True]


def test_a_lost_connection_is_replaced_once_without_refetching_the_secret():
    connect = FakeConnect(FakeConnection(), FakeConnection())
    store = store_with(connect)
    store.get_many(["c-1"])
    store._conn.fails_with, store._conn.breaks = SERVER_CLOSED, True
    assert store.get_many(["c-1"])["c-1"].active
    assert connect.calls == [False, False]
    assert (store.reconnects, store.credential_refreshes) == (1, 0)


def test_a_lost_connection_then_a_refused_password_after_a_rotation():
    connect = FakeConnect(FakeConnection(), AUTH_FAILED, FakeConnection())
    store = store_with(connect)
    store.get_many(["c-1"])
    store._conn.fails_with, store._conn.breaks = errors.AdminShutdown("terminating connection"), True
    assert store.get_many(["c-1"])["c-1"].active
    assert connect.calls == [False, False, True]


def test_a_second_lost_connection_in_a_row_is_raised():
    connect = FakeConnect(FakeConnection(), FakeConnection(SERVER_CLOSED, breaks=True))
    store = store_with(connect)
    store.get_many(["c-1"])
    store._conn.fails_with, store._conn.breaks = SERVER_CLOSED, True
    with pytest.raises(psycopg.OperationalError, match="server closed"):
        store.get_many(["c-1"])
    assert connect.calls == [False, False]
    assert store._conn is None, "dropped, so the next batch reconnects"


def test_a_database_that_is_down_fails_fast_without_a_retry():
    connect = FakeConnect(REFUSED)
    with pytest.raises(psycopg.OperationalError, match="refused"):
        store_with(connect).get_many(["c-1"])
    assert connect.calls == [False]


def test_a_statement_timeout_on_a_live_connection_is_not_retried():
    """A retry would double a slow query's time inside the enrichment's 5 s budget."""
    connect = FakeConnect(FakeConnection())
    store = store_with(connect)
    store.get_many(["c-1"])
    store._conn.fails_with = errors.QueryCanceled("canceling statement due to statement timeout")
    with pytest.raises(errors.QueryCanceled):
        store.get_many(["c-1"])
    assert connect.calls == [False]


@pytest.mark.parametrize(
    "exc, expected",
    [
        (AUTH_FAILED, True),
        (errors.InvalidPassword("x"), True),
        (errors.InvalidAuthorizationSpecification("x"), True),
        (REFUSED, False),
        (SERVER_CLOSED, False),
        (errors.QueryCanceled("x"), False),
    ],
)
def test_what_counts_as_an_authentication_failure(exc, expected):
    assert is_authentication_failure(exc) is expected
