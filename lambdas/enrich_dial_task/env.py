"""The enrichment function's environment: the campaigns database, the campaign cache and the
call ledger's records queue."""

from __future__ import annotations

from dataclasses import dataclass

from shared.env_contract import at_least, variable
from shared.postgres import DatabaseEnv


@dataclass(frozen=True, kw_only=True)
class EnrichmentEnv(DatabaseEnv):
    # How long a container trusts a campaign row (0 disables the cache).
    campaign_cache_ttl_seconds: float = variable("CAMPAIGN_CACHE_TTL_SECONDS", check=at_least(0))
    # The call ledger's records queue: a `dropped` record per drop that names its call, sent
    # before the batch is answered. None: no records (tests about something else).
    call_records_queue_url: str | None = variable("CALL_RECORDS_QUEUE_URL", default=None)
