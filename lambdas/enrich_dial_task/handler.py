"""Pipes enrichment step: parse, enrich from PostgreSQL, log and count every drop."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from enrich_dial_task.campaigns import CampaignStore, connect_with
from enrich_dial_task.enrich import enrich_batch
from enrich_dial_task.env import EnrichmentEnv
from shared.observability import ENRICHMENT_SERVICE, Metric, log_and_count_drops, publish
from shared.postgres import params_source

# No Powertools Tracer: the function's Active tracing (the stack) records each invocation and its
# Init phase without the X-Ray SDK, whose import (with botocore) cost 0.4-0.5 s of every cold start.
logger = Logger(service=ENRICHMENT_SERVICE)

_store: CampaignStore | None = None


def _campaign_store() -> CampaignStore:
    # Built on first use, not at import: the secret fetch and the connection belong to the
    # first invocation's time budget, and a failure there is retried by Pipes.
    global _store
    if _store is None:
        env = EnrichmentEnv.from_environ()
        # Parameters, not a fixed dict: after a password rotation the store asks for them again.
        _store = CampaignStore(connect_with(params_source(env)), ttl_seconds=env.campaign_cache_ttl_seconds)
    return _store


def reset() -> None:
    """Forget this container's connection and cache, as a new container would (the local runner)."""
    global _store
    if _store is not None:
        _store.close()
    _store = None


@logger.inject_lambda_context
def handler(event, context):
    if not isinstance(event, list):
        logger.error("event is not the array of SQS records Pipes sends", extra={"type": type(event).__name__})
    enriched_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    report = enrich_batch(event if isinstance(event, list) else [], _campaign_store(), enriched_at=enriched_at)

    # Pipes deletes what we do not return: these lines and counts are all that remain of a drop.
    log_and_count_drops(logger, service=ENRICHMENT_SERVICE, metric=Metric.TASKS_DROPPED, drops=report.drops)
    # One metric set per invocation: the module-level Metrics shares its set across instances,
    # and the local runner calls this handler from several threads at once.
    metrics = EphemeralMetrics(service=ENRICHMENT_SERVICE)
    metrics.add_metric(name=Metric.TASKS_ENRICHED, unit=MetricUnit.Count, value=len(report.items))
    metrics.add_metric(name=Metric.CAMPAIGN_QUERIES, unit=MetricUnit.Count, value=report.queries)
    metrics.flush_metrics()
    logger.info(
        "batch enriched",
        extra={"records": report.records, "enriched": len(report.items), "dropped": len(report.drops)},
    )
    publish(ENRICHMENT_SERVICE, report)
    return report.items
