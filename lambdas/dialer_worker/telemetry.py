"""What the dialer says about each batch: log lines and EMF metrics of its report."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from dialer_worker.dispatch import BatchReport
from dialer_worker.live_rate import LiveRate
from shared.observability import (
    DIALER_SERVICE,
    Metric,
    count_by_dimension,
    count_by_reason,
    log_and_count_drops,
)

# No Powertools Tracer: the function's Active tracing (the stack) records each invocation and its
# Init phase without the X-Ray SDK, whose import (with botocore) cost 0.4-0.5 s of every cold start.
logger = Logger(service=DIALER_SERVICE)

# Counted every invocation, zero included, so the alarms and the dashboard see a steady series.
_COUNTED = (
    Metric.RESTORE_TIMED_OUT,
    Metric.DIALS_SENT,
    Metric.DIALS_FAILED,
    Metric.DEFERRED,
    Metric.DEFER_FAILED,
    Metric.DUPLICATE_SUPPRESSED,
    Metric.WORKER_OVERLOADED,
    Metric.RECORDS_SENT,
    Metric.RECORDS_NOT_SENT,
)


class DialerTelemetry:
    """One per container: it remembers whether it already said Redis is down, so the outage is
    logged once when it starts and once when it ends, not on every batch."""

    def __init__(self, *, namespace: str | None = None) -> None:
        """`namespace`: the metrics' namespace; None, Powertools' POWERTOOLS_METRICS_NAMESPACE."""
        self.namespace = namespace
        self._warned_redis_down = False

    def observe(self, report: BatchReport, live_rate: LiveRate | None = None) -> None:
        live = live_rate
        if live is not None and live.last_error:
            # Paced at the last good value (the ceiling before the first), until the next read.
            logger.warning("live MAX_CPS not read", extra={"error": live.last_error, "maxCps": live.current()})
        ns = self.namespace
        log_and_count_drops(
            logger, service=DIALER_SERVICE, metric=Metric.DIALS_DROPPED, drops=report.drops, namespace=ns
        )
        # Why tasks had to wait (rate, in_flight, outside_window, redis_down, late, stopped,
        # live_calls, paused): the alarm on the rate-limited share reads Reason=rate only.
        count_by_reason(service=DIALER_SERVICE, metric=Metric.DEFERRED, counts=report.deferrals, namespace=ns)
        for message_id, why in report.defer_failures:
            # The task is retried as a batch item failure; if it keeps failing it reaches the DLQ undialed.
            logger.warning("deferral not sent", extra={"messageId": message_id, "reason": why})
        self._flush_batch_metrics(report)
        # Live calls per campaign after admission (dimension campaignId): what the caps are held to,
        # so only for campaigns that have one (a series is a custom metric each: docs/runbook.md).
        count_by_dimension(
            service=DIALER_SERVICE,
            metric=Metric.LIVE_CALLS,
            dimension="campaignId",
            values={c: n for c, n in report.campaign_live.items() if c in report.capped_campaigns},
            namespace=ns,
        )
        self._log_redis_state(report)
        logger.info(
            "batch dialed",
            extra={
                **dict(report.counts),
                "failures": len(report.failures),
                "effectiveCps": report.effective_cps,
                "redisUnavailable": report.redis_unavailable,
                # Every campaign's live calls, metric or not (capped ones only get a metric).
                "campaignLive": report.campaign_live,
            },
        )

    def _flush_batch_metrics(self, report: BatchReport) -> None:
        # One metric set per invocation: the module-level Metrics shares its set across instances,
        # and the local runner dials from several threads at once.
        metrics = EphemeralMetrics(service=DIALER_SERVICE, namespace=self.namespace)
        for name in _COUNTED:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.counts[name])
        if report.pacing_delay_ms:
            metrics.add_metric(
                name=Metric.PACING_DELAY_MS, unit=MetricUnit.Milliseconds, value=max(report.pacing_delay_ms)
            )
        if report.effective_cps is not None:
            metrics.add_metric(name=Metric.EFFECTIVE_CPS, unit=MetricUnit.Count, value=report.effective_cps)
        metrics.add_metric(
            name=Metric.REDIS_UNAVAILABLE, unit=MetricUnit.Count, value=1 if report.redis_unavailable else 0
        )
        metrics.add_metric(name=Metric.CLAIMS_RESET, unit=MetricUnit.Count, value=1 if report.claims_reset else 0)
        if report.fleet_live is not None:
            metrics.add_metric(name=Metric.LIVE_CALLS, unit=MetricUnit.Count, value=report.fleet_live)
        metrics.flush_metrics()

    def _log_redis_state(self, report: BatchReport) -> None:
        if report.counts[Metric.RESTORE_TIMED_OUT]:
            logger.error("Redis restore not done within RESTORE_HOLD_SECONDS: dialing without the lost claims")
        if report.restore_error:
            logger.error("restore request not sent (retried next batch)", extra={"error": report.restore_error})
        if report.claims_reset:
            logger.error(
                "Redis lost its dial claims (epoch changed): calls in flight may be re-sent; the worker's "
                "Idempotency-Key must stop them"
            )
        if report.redis_unavailable and not self._warned_redis_down:
            self._warned_redis_down = True
            logger.error(
                "Redis unreachable: pacing locally at MAX_CPS / reserved concurrency",
                extra={"error": report.redis_error},
            )
        elif not report.redis_unavailable and self._warned_redis_down:
            self._warned_redis_down = False
            logger.info("Redis reachable again: fleet-wide pacing restored")
