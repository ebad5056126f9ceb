"""What the ledger function says about each invocation: log lines and EMF metrics of its report."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from call_ledger.core import LedgerReport
from shared.observability import LEDGER_SERVICE, Metric, count_by_reason

logger = Logger(service=LEDGER_SERVICE)


def observe(report: LedgerReport, *, namespace: str | None = None) -> None:
    """`namespace`: the metrics' namespace; None, Powertools' POWERTOOLS_METRICS_NAMESPACE."""
    if report.retention is not None:
        _observe_retention(report, namespace)
        return
    if report.malformed_event:
        logger.error("event is neither an SQS batch nor the retention job's")
    for drop in report.drops:
        logger.warning(
            "ledger record dropped",
            extra={
                "reason": str(drop.reason),
                "messageId": drop.message_id,
                "callId": drop.call_id,
                "detail": drop.detail,
            },
        )
    count_by_reason(
        service=LEDGER_SERVICE, metric=Metric.RECORDS_DROPPED, counts=report.dropped_by_reason, namespace=namespace
    )
    count_by_reason(
        service=LEDGER_SERVICE, metric=Metric.RETRIES_SKIPPED, counts=report.retries.skipped, namespace=namespace
    )
    for done in report.restores:
        # The dialers hold until this marker; recipients 0: no recipient hash key, counts not restored.
        logger.warning(
            "Redis restored from the ledger",
            extra={"epoch": done.epoch, "claims": done.claims, "recipients": done.recipients},
        )
    metrics = EphemeralMetrics(service=LEDGER_SERVICE, namespace=namespace)
    metrics.add_metric(name=Metric.RECORDS_WRITTEN, unit=MetricUnit.Count, value=report.written)
    metrics.add_metric(name=Metric.RECORDS_MERGED, unit=MetricUnit.Count, value=report.merged)
    metrics.add_metric(name=Metric.RECORDS_DROPPED, unit=MetricUnit.Count, value=len(report.drops))
    metrics.add_metric(name=Metric.RETRIES_ENQUEUED, unit=MetricUnit.Count, value=len(report.retries.enqueued))
    if report.orphans is not None:
        metrics.add_metric(name=Metric.LEDGER_ORPHANS, unit=MetricUnit.Count, value=report.orphans)
    metrics.flush_metrics()
    logger.info(
        "ledger records written",
        extra={
            "messages": report.messages,
            "written": report.written,
            "merged": report.merged,
            "dropped": len(report.drops),
            "retriesEnqueued": len(report.retries.enqueued),
            "retriesSkipped": dict(report.retries.skipped),
            "orphans": report.orphans,
            "failedMessages": len(report.failed_message_ids),
        },
    )


def _observe_retention(report: LedgerReport, namespace: str | None) -> None:
    result = report.retention
    assert result is not None
    metrics = EphemeralMetrics(service=LEDGER_SERVICE, namespace=namespace)
    metrics.add_metric(name=Metric.PARTITIONS_DROPPED, unit=MetricUnit.Count, value=len(result.dropped))
    metrics.flush_metrics()
    logger.info(
        "ledger retention enforced",
        extra={
            "dropped": list(result.dropped),
            "created": list(result.created),
            "keysDeleted": result.keys_deleted,
            "defaultRowsDeleted": result.default_rows_deleted,
        },
    )
