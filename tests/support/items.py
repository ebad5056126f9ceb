"""Items as the enrichment hands them to the dialer, built through the shared contract."""

from __future__ import annotations

import json

from shared.dial_task import DialTask, EnrichedTask, parse_campaign_config

CONFIG = {"audioFileUrl": "s3://audio/hello.wav", "ivrFlow": {"start": "menu"}, "maxConcurrentCalls": 10}


def enriched_task(n: int, campaign: str = "c-1", max_cps: float | None = None, attempts: int = 0) -> EnrichedTask:
    config = parse_campaign_config(dict(CONFIG, **({"maxCps": max_cps} if max_cps else {})))
    assert config is not None
    task = DialTask(campaign, f"k-{n}", f"+1415555{n:04d}", attempts)
    body = json.dumps({**task.fields(), "metadata": {}})
    return EnrichedTask(
        message_id=f"m-{campaign}-{n}-{attempts}",
        body=body,
        task=task,
        campaign_name=campaign,
        config=config,
        enriched_at="2026-11-28T00:00:00.000Z",
        message_group_id=campaign,
    )


def item(n: int, campaign: str = "c-1", max_cps: float | None = None, attempts: int = 0, **task_fields) -> dict:
    """The item dict; `task_fields` (campaignId, phoneNumber, ...) override the task's own."""
    built = enriched_task(n, campaign, max_cps, attempts).to_item()
    built["task"].update(task_fields)
    return built
