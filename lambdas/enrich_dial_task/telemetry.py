"""What the enrichment says about each batch: log lines and EMF metrics of its report."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from enrich_dial_task.enrich import EnrichmentReport
from shared.observability import ENRICHMENT_SERVICE, Metric, log_and_count_drops

# No Powertools Tracer: the function's Active tracing (the stack) records each invocation and its
# Init phase without the X-Ray SDK, whose import (with botocore) cost 0.4-0.5 s of every cold start.
logger = Logger(service=ENRICHMENT_SERVICE)


def observe(report: EnrichmentReport, *, namespace: str | None = None) -> None:
    """`namespace`: the metrics' namespace; None, Powertools' POWERTOOLS_METRICS_NAMESPACE."""
    # Pipes deletes what we do not return: these lines and counts are all that remain of a drop.
    log_and_count_drops(
        logger, service=ENRICHMENT_SERVICE, metric=Metric.TASKS_DROPPED, drops=report.drops, namespace=namespace
    )
    # One metric set per invocation: the module-level Metrics shares its set across instances,
    # and the local runner enriches from several threads at once.
    metrics = EphemeralMetrics(service=ENRICHMENT_SERVICE, namespace=namespace)
    metrics.add_metric(name=Metric.TASKS_ENRICHED, unit=MetricUnit.Count, value=len(report.items))
    metrics.add_metric(name=Metric.CAMPAIGN_QUERIES, unit=MetricUnit.Count, value=report.queries)
    metrics.add_metric(name=Metric.RECORDS_SENT, unit=MetricUnit.Count, value=report.records_sent)
    metrics.flush_metrics()
    logger.info(
        "batch enriched",
        extra={"records": report.records, "enriched": len(report.items), "dropped": len(report.drops)},
    )
