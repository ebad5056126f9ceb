"""Items as the enrichment hands them to the dialer, built through the shared contract."""

from __future__ import annotations

import json

from shared.dial_task import DialTask, EnrichedTask, parse_campaign_config

# No maxConcurrentCalls: a test about live calls sets its own cap (`config`).
CONFIG = {"audioFileUrl": "s3://audio/hello.wav", "ivrFlow": {"start": "menu"}}


def enriched_task(
    n: int, campaign: str = "c-1", max_cps: float | None = None, attempts: int = 0, config: dict | None = None
) -> EnrichedTask:
    """`config`: more campaign config fields (maxConcurrentCalls, minAnswerRate, ...)."""
    parsed = parse_campaign_config(dict(CONFIG, **({"maxCps": max_cps} if max_cps else {}), **(config or {})))
    assert parsed is not None
    task = DialTask(campaign, f"k-{n}", f"+1415555{n:04d}", attempts)
    body = json.dumps({**task.fields(), "metadata": {}})
    return EnrichedTask(
        message_id=f"m-{campaign}-{n}-{attempts}",
        body=body,
        task=task,
        campaign_name=campaign,
        config=parsed,
        enriched_at="2026-11-28T00:00:00.000Z",
        message_group_id=campaign,
    )


def item(
    n: int,
    campaign: str = "c-1",
    max_cps: float | None = None,
    attempts: int = 0,
    config: dict | None = None,
    status: str = "active",
    **task_fields,
) -> dict:
    """The item dict; `task_fields` (campaignId, phoneNumber, ...) override the task's own."""
    built = enriched_task(n, campaign, max_cps, attempts, config).to_item()
    built["campaign"]["status"] = status
    built["task"].update(task_fields)
    return built
