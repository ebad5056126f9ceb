"""The enrichment's clients, built once per container: the campaign store (its connection,
opened on first use, and its cache) and the ledger's record sender (SQS, made on first use)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enrich_dial_task.campaigns import CampaignStore, connect_with
from enrich_dial_task.env import EnrichmentEnv
from shared.aws_clients import sqs_client
from shared.call_records import RecordSender
from shared.postgres import params_source
from shared.sqs_wire import wire_factory


@dataclass(frozen=True)
class EnrichmentClients:
    store: CampaignStore
    records: RecordSender = field(default_factory=RecordSender.disabled)

    def close(self) -> None:
        self.store.close()


def build_clients(env: EnrichmentEnv, *, sqs: Callable[[], Any] = sqs_client) -> EnrichmentClients:
    # Parameters, not a fixed dict: after a password rotation the store asks for them again.
    return EnrichmentClients(
        CampaignStore(connect_with(params_source(env)), ttl_seconds=env.campaign_cache_ttl_seconds),
        RecordSender(env.call_records_queue_url, wire_factory(sqs)),
    )
