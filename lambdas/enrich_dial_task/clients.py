"""The enrichment's clients, built once per container: the campaign store (its connection,
opened on first use, and its cache)."""

from __future__ import annotations

from dataclasses import dataclass

from enrich_dial_task.campaigns import CampaignStore, connect_with
from enrich_dial_task.env import EnrichmentEnv
from shared.postgres import params_source


@dataclass(frozen=True)
class EnrichmentClients:
    store: CampaignStore

    def close(self) -> None:
        self.store.close()


def build_clients(env: EnrichmentEnv) -> EnrichmentClients:
    # Parameters, not a fixed dict: after a password rotation the store asks for them again.
    return EnrichmentClients(
        CampaignStore(connect_with(params_source(env)), ttl_seconds=env.campaign_cache_ttl_seconds)
    )
