"""Campaign configs and the do-not-call list from PostgreSQL: one query per batch; campaigns are
cached for a short while per container, do-not-call entries never."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from shared.dial_task import PAUSED
from shared.postgres import is_authentication_failure, open_connection

# Well inside the enrichment's 5 s timeout, so a slow database is an error Pipes retries, not a
# Lambda timeout.
STATEMENT_TIMEOUT_MS = 2000
CONNECT_TIMEOUT_S = 2

# One round trip for both: the campaigns not in the cache, and which of the batch's numbers are
# on the do-not-call list.
_QUERY = """
SELECT 'campaign', id, name, status, config FROM campaigns WHERE id = ANY(%(campaigns)s)
UNION ALL
SELECT 'do_not_call', phone_number, NULL, NULL, NULL FROM do_not_call WHERE phone_number = ANY(%(phones)s)
"""


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    status: str
    config: dict

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def paused(self) -> bool:
        return self.status == PAUSED


@dataclass(frozen=True)
class Lookup:
    campaigns: dict[str, Campaign | None]  # None: no such campaign
    do_not_call: frozenset[str]


class CampaignStore:
    """Loads campaigns by id. Unknown ids are cached too, so a flood of tasks for a deleted
    campaign costs one query per TTL, not one per batch.

    The connection is opened on first use, reused across invocations, and dropped after any
    database error so the next batch reconnects.

    `connect()` opens a connection; `connect(refresh_credentials=True)` fetches the credentials
    again first (connect_with does both). A query is retried once on a new connection when the
    reused one turns out closed (the proxy's idle timeout, a failover), and once with fresh
    credentials when the server refuses the password (after a rotation). Any other error, and a
    second failure, is raised: the batch goes back to Pipes.
    """

    def __init__(
        self,
        connect: Callable[..., psycopg.Connection],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._ttl = ttl_seconds
        self._clock = clock
        self._conn: psycopg.Connection | None = None
        self._cache: dict[str, tuple[float, Campaign | None]] = {}
        self.queries = 0
        self.reconnects = 0
        self.credential_refreshes = 0

    def get_many(self, ids: Iterable[str]) -> dict[str, Campaign | None]:
        """{id: Campaign, or None when no such campaign}; no query when all are cached."""
        return self.lookup(ids, ()).campaigns

    def lookup(self, ids: Iterable[str], phone_numbers: Iterable[str]) -> Lookup:
        """The campaigns (cached ones from the cache) and the numbers on the do-not-call list, in
        at most one query. Raises psycopg.Error on database faults."""
        now = self._clock()
        phones = sorted(set(phone_numbers))
        wanted = set(ids)
        found: dict[str, Campaign | None] = {}
        missing = []
        for campaign_id in wanted:
            cached = self._cache.get(campaign_id)
            if cached is not None and cached[0] > now:
                found[campaign_id] = cached[1]
            else:
                missing.append(campaign_id)
        listed: frozenset[str] = frozenset()
        if missing or phones:
            loaded, listed = self._query(missing, phones)
            expires = now + self._ttl
            for campaign_id in missing:
                found[campaign_id] = loaded.get(campaign_id)
                if self._ttl > 0:
                    self._cache[campaign_id] = (expires, found[campaign_id])
        return Lookup(found, listed)

    def _query(self, ids: list[str], phones: list[str]) -> tuple[dict[str, Campaign], frozenset[str]]:
        self.queries += 1
        reconnected = refreshed = False
        while True:
            reused = self._conn is not None and not self._conn.closed
            try:
                if not reused:
                    self._conn = self._connect(refresh_credentials=True) if refreshed else self._connect()
                rows = self._conn.execute(_QUERY, {"campaigns": ids, "phones": phones}).fetchall()  # type: ignore[union-attr]
                break
            except psycopg.OperationalError as exc:
                lost = reused and self._conn is not None and self._conn.broken
                self.close()
                if is_authentication_failure(exc) and not refreshed:
                    refreshed = True
                    self.credential_refreshes += 1
                elif lost and not reconnected:
                    reconnected = True
                    self.reconnects += 1
                else:
                    raise
            except psycopg.Error:
                self.close()
                raise
        campaigns = {row[1]: Campaign(row[1], row[2], row[3], row[4] or {}) for row in rows if row[0] == "campaign"}
        return campaigns, frozenset(row[1] for row in rows if row[0] == "do_not_call")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def connect_with(params: dict | Callable[..., dict]) -> Callable[..., psycopg.Connection]:
    """A connection factory for reads (shared.postgres.open_connection). `params` is
    psycopg.connect()'s keyword arguments, or a callable returning them that `params(refresh=True)`
    asks to fetch the credentials again (shared.postgres.params_source)."""

    def connect(refresh_credentials: bool = False) -> psycopg.Connection:
        current = params(refresh=refresh_credentials) if callable(params) else params
        return open_connection(
            current,
            application_name="enrich-dial-task",
            connect_timeout_s=CONNECT_TIMEOUT_S,
            statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        )

    return connect
