"""What the call-events function says about each batch: log lines and EMF metrics of its report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from call_events.core import CallEventsReport
from shared.observability import CALL_EVENTS_SERVICE, Metric, count_by_dimension, count_by_reason

logger = Logger(service=CALL_EVENTS_SERVICE)


def observe(report: CallEventsReport, *, namespace: str | None = None) -> None:
    """`namespace`: the metrics' namespace; None, Powertools' POWERTOOLS_METRICS_NAMESPACE."""
    if report.malformed_event:
        logger.error("event is not the {'Records': [...]} of an SQS event source mapping")
    for drop in report.drops:
        logger.warning(
            "call event dropped",
            extra={
                "reason": str(drop.reason),
                "messageId": drop.message_id,
                "callId": drop.call_id,
                "campaignId": drop.campaign_id,
            },
        )
    reasons = Counter(str(drop.reason) for drop in report.drops)
    count_by_reason(service=CALL_EVENTS_SERVICE, metric=Metric.CALL_EVENTS_DROPPED, counts=reasons, namespace=namespace)
    result = report.result
    metrics = EphemeralMetrics(service=CALL_EVENTS_SERVICE, namespace=namespace)
    metrics.add_metric(name=Metric.CALL_EVENTS_PROCESSED, unit=MetricUnit.Count, value=len(result.counted))
    metrics.add_metric(name=Metric.CALL_EVENTS_DUPLICATE, unit=MetricUnit.Count, value=len(result.duplicates))
    metrics.add_metric(name=Metric.CALL_EVENTS_DROPPED, unit=MetricUnit.Count, value=len(report.drops))
    metrics.add_metric(name=Metric.RECORDS_SENT, unit=MetricUnit.Count, value=report.records_sent)
    metrics.add_metric(name=Metric.RECORDS_NOT_SENT, unit=MetricUnit.Count, value=report.records_not_sent)
    if result.counted or result.duplicates:
        metrics.add_metric(name=Metric.LIVE_CALLS, unit=MetricUnit.Count, value=result.fleet_live)
    metrics.flush_metrics()
    # A series per campaign is a custom metric each (docs/runbook.md, "What the metrics cost"):
    # only the campaigns slowed for their answers now, the ones on-call must see; the rest are in
    # the log line below and `dialctl status`. Live calls per campaign: the dialer's, for capped ones.
    slowed = {c: s for c, s in result.campaigns.items() if s.pace_factor < 1}
    per_campaign: dict[str, Mapping[str, float]] = {
        Metric.ANSWER_RATE: {c: s.answer_rate for c, s in slowed.items() if s.answer_rate is not None},
        Metric.PACE_FACTOR: {c: s.pace_factor for c, s in slowed.items()},
    }
    for metric, values in per_campaign.items():
        count_by_dimension(
            service=CALL_EVENTS_SERVICE, metric=metric, dimension="campaignId", values=values, namespace=namespace
        )
    logger.info(
        "call events recorded",
        extra={
            "records": report.records,
            "counted": len(result.counted),
            "duplicates": len(result.duplicates),
            "dropped": len(report.drops),
            "fleetLive": result.fleet_live,
            "slowedCampaigns": {c: s.pace_factor for c, s in slowed.items()},
            # Every campaign of the batch, metric or not: CloudWatch Logs Insights finds them here.
            "campaigns": {
                c: {"answerRate": s.answer_rate, "paceFactor": s.pace_factor, "liveCalls": s.live_calls}
                for c, s in result.campaigns.items()
            },
        },
    )
