"""The enrichment's work on one batch, without Lambda: the dialable tasks of a batch of Pipes SQS
records, each with its campaign's config; every other record dropped with a reason."""

from __future__ import annotations

from datetime import datetime

from enrich_dial_task.clients import EnrichmentClients
from enrich_dial_task.enrich import EnrichmentReport, enrich_batch
from enrich_dial_task.env import EnrichmentEnv


def process(
    event: object, env: EnrichmentEnv, clients: EnrichmentClients, *, now: datetime
) -> tuple[list[dict], EnrichmentReport]:
    """`event`: Pipes' array of records (anything else enriches nothing). `now`: the items'
    enrichedAt. Database faults propagate: Pipes then retries the whole batch."""
    enriched_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    report = enrich_batch(event if isinstance(event, list) else [], clients.store, enriched_at=enriched_at)
    return report.items, report
