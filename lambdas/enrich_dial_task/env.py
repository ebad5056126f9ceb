"""The enrichment function's environment: the campaigns database and the campaign cache."""

from __future__ import annotations

from dataclasses import dataclass

from shared.env_contract import at_least, variable
from shared.postgres import DatabaseEnv


@dataclass(frozen=True, kw_only=True)
class EnrichmentEnv(DatabaseEnv):
    # How long a container trusts a campaign row (0 disables the cache).
    campaign_cache_ttl_seconds: float = variable("CAMPAIGN_CACHE_TTL_SECONDS", check=at_least(0))
