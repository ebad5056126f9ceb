"""The enrichment's work on one batch, without Lambda: the dialable tasks of a batch of Pipes SQS
records, each with its campaign's config; every other record dropped with a reason, and the
ledger sent a `dropped` record for each drop that names its call (campaignId, contactId, attempts).

Pipes' enrichment step has no partial batch response: a record it does not return is gone. So
when SQS does not acknowledge every record, the whole batch fails (RecordsNotSent) and Pipes
retries it; the records sent the first time come again, and the ledger merges them.
"""

from __future__ import annotations

from datetime import datetime

from enrich_dial_task.clients import EnrichmentClients
from enrich_dial_task.enrich import EnrichmentReport, enrich_batch
from enrich_dial_task.env import EnrichmentEnv
from shared.call_records import RecordsNotSent, dropped_record


def process(
    event: object, env: EnrichmentEnv, clients: EnrichmentClients, *, now: datetime
) -> tuple[list[dict], EnrichmentReport]:
    """`event`: Pipes' array of records (anything else enriches nothing). `now`: the items'
    enrichedAt and the drops' droppedAt. Database faults propagate: Pipes then retries the whole
    batch; so do records SQS did not acknowledge (RecordsNotSent)."""
    enriched_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    report = enrich_batch(event if isinstance(event, list) else [], clients.store, enriched_at=enriched_at)
    records = [(i, record) for i, drop in enumerate(report.drops) if (record := dropped_record(drop, now)) is not None]
    not_sent = clients.records.send(records)
    report.records_sent = len(records) - len(not_sent)
    if not_sent:
        raise RecordsNotSent(f"{len(not_sent)} of {len(records)} dropped records not acknowledged by SQS")
    return report.items, report
