"""Turns a batch of Pipes SQS records into dialable tasks. No Lambda types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from enrich_dial_task.campaigns import Campaign, CampaignStore
from enrich_dial_task.records import DialTask, Rejected, parse_record

# What the dialer needs to place a call; without them the worker would reject it for good.
REQUIRED_CONFIG = ("audioFileUrl", "ivrFlow")


@dataclass
class BatchResult:
    items: list[dict]
    rejected: list[Rejected]


def enriched_item(task: DialTask, campaign: Campaign, enriched_at: str) -> dict:
    return {
        "messageId": task.message_id,
        "campaignId": task.campaign_id,
        "contactId": task.contact_id,
        "phoneNumber": task.phone_number,
        "attempts": task.attempts,
        "metadata": task.metadata,
        "campaign": {"id": campaign.id, "name": campaign.name, "config": campaign.config},
        "enrichedAt": enriched_at,
    }


def enrich_batch(records: Iterable[Any], store: CampaignStore) -> BatchResult:
    """One item per dialable task, in input order; every other record rejected with a reason.
    Database faults propagate: the whole batch is then retried by Pipes."""
    tasks: list[DialTask] = []
    rejected: list[Rejected] = []
    for record in records:
        parsed = parse_record(record)
        (rejected if isinstance(parsed, Rejected) else tasks).append(parsed)

    campaigns = store.get_many(t.campaign_id for t in tasks) if tasks else {}
    enriched_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    items = []
    for task in tasks:
        campaign = campaigns.get(task.campaign_id)
        reason = None
        if campaign is None:
            reason = "unknown_campaign"
        elif not campaign.active:
            reason = "campaign_inactive"
        elif not isinstance(campaign.config, dict) or any(campaign.config.get(k) in (None, "") for k in REQUIRED_CONFIG):
            reason = "campaign_misconfigured"
        if reason:
            rejected.append(Rejected(reason, task.message_id, task.campaign_id, task.phone_number))
        else:
            items.append(enriched_item(task, campaign, enriched_at))
    return BatchResult(items, rejected)
