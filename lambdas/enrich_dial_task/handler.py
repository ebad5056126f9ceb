"""Pipes enrichment step: parse, enrich from PostgreSQL, log and count every drop."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from enrich_dial_task.campaigns import CampaignStore, connect_with
from enrich_dial_task.enrich import enrich_batch
from shared.masking import mask_phone
from shared.postgres import connection_params

# Fixed here rather than only in POWERTOOLS_SERVICE_NAME: the alarms and the local runner rely on
# this dimension value, and both handlers may share one process locally.
SERVICE = "enrich-dial-task"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)

_store: CampaignStore | None = None


def _campaign_store() -> CampaignStore:
    # Built on first use, not at import: the secret fetch and the connection belong to the
    # first invocation's time budget, and a failure there is retried by Pipes.
    global _store
    if _store is None:
        ttl = float(os.environ.get("CAMPAIGN_CACHE_TTL_SECONDS", "5"))
        _store = CampaignStore(connect_with(connection_params()), ttl_seconds=ttl)
    return _store


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    records = event if isinstance(event, list) else []
    if not isinstance(event, list):
        logger.error("event is not the array of SQS records Pipes sends", extra={"type": type(event).__name__})
    store = _campaign_store()
    queries_before = store.queries
    result = enrich_batch(records, store)

    for drop in result.rejected:
        # Pipes deletes what we do not return: this line and this count are all that remain of it.
        logger.warning(
            "dial task dropped",
            extra={
                "reason": drop.reason,
                "messageId": drop.message_id,
                "correlation_id": drop.message_id,
                "campaignId": drop.campaign_id,
                "phoneNumber": mask_phone(drop.phone_number),
            },
        )
        with single_metric(
            name="TasksDropped", unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}
        ) as metric:
            metric.add_dimension(name="Reason", value=drop.reason)
    # One metric set per invocation: the module-level Metrics shares its set across instances,
    # and the local runner calls this handler from several threads at once.
    metrics = EphemeralMetrics(service=SERVICE)
    metrics.add_metric(name="TasksEnriched", unit=MetricUnit.Count, value=len(result.items))
    metrics.add_metric(name="CampaignQueries", unit=MetricUnit.Count, value=store.queries - queries_before)
    metrics.flush_metrics()
    logger.info(
        "batch enriched",
        extra={"records": len(records), "enriched": len(result.items), "dropped": len(result.rejected)},
    )
    return result.items
