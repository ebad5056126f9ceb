"""Pipes enrichment step: parse, enrich from PostgreSQL, log and count every drop."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from enrich_dial_task import core, telemetry
from enrich_dial_task.clients import EnrichmentClients, build_clients
from enrich_dial_task.env import EnrichmentEnv
from enrich_dial_task.telemetry import logger


@functools.cache
def container() -> tuple[EnrichmentEnv, EnrichmentClients]:
    """Built on the first invocation, not at import: the secret fetch and the connection belong to
    the first invocation's time budget, and a failure there is retried by Pipes."""
    env = EnrichmentEnv.from_environ()
    return env, build_clients(env)


@logger.inject_lambda_context
def handler(event, context):
    if not isinstance(event, list):
        logger.error("event is not the array of SQS records Pipes sends", extra={"type": type(event).__name__})
    env, clients = container()
    items, report = core.process(event, env, clients, now=datetime.now(UTC))
    telemetry.observe(report)
    return items
