"""Turns a batch of Pipes SQS records into dialable tasks. No Lambda types."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from enrich_dial_task.campaigns import CampaignStore
from enrich_dial_task.records import Record, parse_record
from shared.dial_task import EnrichedTask, parse_campaign_config
from shared.drops import Drop, DropReason


@dataclass
class EnrichmentReport:
    """What one batch came to: the items for the dialer, the drops, and the queries it cost."""

    records: int = 0
    items: list[dict] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    queries: int = 0
    # The ledger's `dropped` records SQS acknowledged (the core sends them).
    records_sent: int = 0


def enrich_batch(records: Iterable[Any], store: CampaignStore, *, enriched_at: str) -> EnrichmentReport:
    """One item per dialable task, in input order; every other record dropped with a reason.
    Database faults propagate: the whole batch is then retried by Pipes."""
    report = EnrichmentReport()
    parsed: list[Record] = []
    for record in records:
        report.records += 1
        result = parse_record(record)
        if isinstance(result, Drop):
            report.drops.append(result)
        else:
            parsed.append(result)

    queries_before = store.queries
    lookup = (
        store.lookup((r.task.campaign_id for r in parsed), (r.task.phone_number for r in parsed)) if parsed else None
    )
    report.queries = store.queries - queries_before
    for record in parsed:
        campaign = lookup.campaigns.get(record.task.campaign_id) if lookup else None
        config = parse_campaign_config(campaign.config) if campaign is not None else None
        if lookup and record.task.phone_number in lookup.do_not_call:
            reason = DropReason.DO_NOT_CALL
        elif campaign is None:
            reason = DropReason.UNKNOWN_CAMPAIGN
        elif not campaign.active and not campaign.paused:
            reason = DropReason.CAMPAIGN_INACTIVE
        elif config is None:
            reason = DropReason.CAMPAIGN_MISCONFIGURED
        else:
            task = EnrichedTask(
                message_id=record.message_id,
                body=record.body,
                task=record.task,
                campaign_name=campaign.name,
                config=config,
                enriched_at=enriched_at,
                message_group_id=record.message_group_id,
                message_attributes=record.message_attributes,
                first_sent_ms=record.first_sent_ms,
                # A paused campaign's tasks go on to the dialer, which keeps them waiting.
                campaign_status=campaign.status if campaign.paused else "active",
            )
            report.items.append(task.to_item())
            continue
        fields = record.task
        report.drops.append(
            Drop(
                reason,
                record.message_id,
                fields.campaign_id,
                fields.phone_number,
                contact_id=fields.contact_id,
                attempts=fields.attempts,
            )
        )
    return report
