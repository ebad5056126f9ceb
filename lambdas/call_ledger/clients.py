"""The ledger function's clients, built once per container: its PostgreSQL connection (opened on
first use, opened again after a failure), the dial-tasks queue's SQS client, and Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from call_ledger.env import LedgerEnv
from shared.aws_clients import sqs_client
from shared.postgres import is_authentication_failure, open_connection, params_source
from shared.recipient_key import read_recipient_key
from shared.redis_client import redis_client

CONNECT_TIMEOUT_S = 3
# A batch is one write and one retry query: far under this, unless something holds a lock.
STATEMENT_TIMEOUT_MS = 10_000


class LedgerDatabase:
    """One autocommit connection (store.write and enqueue_retries open their own transactions).
    A database error closes it: the next batch connects again, with fresh credentials when the
    server refused the old ones (a rotation)."""

    def __init__(self, params: Callable[..., dict[str, Any]]) -> None:
        self._params = params
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._connect(refresh=False)
            except psycopg.OperationalError as exc:
                if not is_authentication_failure(exc):
                    raise
                self._conn = self._connect(refresh=True)
        return self._conn

    def _connect(self, *, refresh: bool) -> psycopg.Connection:
        return open_connection(
            self._params(refresh=refresh),
            application_name="call-ledger",
            connect_timeout_s=CONNECT_TIMEOUT_S,
            statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        )

    def reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.reset()


@dataclass
class LedgerClients:
    database: LedgerDatabase
    # Made on first use: a batch without retries never needs it.
    sqs_factory: Callable[[], Any] = sqs_client
    redis: Any = None
    # The recipient hash key (None: a restore puts back claims only).
    recipient_key: bytes | None = None
    _sqs: Any = field(default=None, init=False)

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = self.sqs_factory()
        return self._sqs

    def close(self) -> None:
        self.database.close()
        if self.redis is not None:
            self.redis.close()


def build_clients(env: LedgerEnv, *, sqs: Callable[[], Any] = sqs_client) -> LedgerClients:
    return LedgerClients(
        database=LedgerDatabase(params_source(env)),
        sqs_factory=sqs,
        redis=redis_client(env.redis),
        recipient_key=read_recipient_key(env.recipient_hash_key_secret_arn, env.recipient_hash_key),
    )
