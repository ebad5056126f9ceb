"""Pipe target: dial each enriched task at its reserved slot; report only the items to retry."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from dialer_worker.dispatch import BatchReport, Dispatcher
from dialer_worker.env import DialerEnv
from dialer_worker.live_rate import REDIS_SCHEME, LiveRate, redis_key
from shared.observability import (
    DIALER_SERVICE,
    Metric,
    count_by_dimension,
    count_by_reason,
    log_and_count_drops,
    publish,
)
from shared.redis_client import redis_client

# No Powertools Tracer: the function's Active tracing (the stack) records each invocation and its
# Init phase without the X-Ray SDK, whose import (with botocore) cost 0.4-0.5 s of every cold start.
logger = Logger(service=DIALER_SERVICE)

_dispatcher: Dispatcher | None = None
_lock = threading.Lock()
_warned_redis_down = False

# Counted every invocation, zero included, so the alarms and the dashboard see a steady series.
_COUNTED = (
    Metric.DIALS_SENT,
    Metric.DIALS_FAILED,
    Metric.DEFERRED,
    Metric.DEFER_FAILED,
    Metric.DUPLICATE_SUPPRESSED,
    Metric.WORKER_OVERLOADED,
)


def _sqs_client():
    import boto3  # in the Lambda runtime; AWS_ENDPOINT_URL_SQS points it at a local SQS

    return boto3.client("sqs")


def _ssm_client():
    import boto3  # in the Lambda runtime

    return boto3.client("ssm")


def build_live_rate(env: DialerEnv, redis: Any) -> LiveRate | None:
    """The live MAX_CPS reader under runtime control, or None (MAX_CPS alone)."""
    name = env.max_cps_parameter_name
    if not name:
        return None
    if name.startswith(REDIS_SCHEME):
        return LiveRate.from_redis(redis, redis_key(env.key_prefix, name[len(REDIS_SCHEME) :]), ceiling=env.max_cps)
    return LiveRate.from_ssm(_ssm_client(), name, ceiling=env.max_cps)


def recipient_key(env: DialerEnv) -> bytes | None:
    """The recipient limit's hash key: Secrets Manager when deployed, the variable locally."""
    if not env.recipient_daily_limit:
        return None
    if env.recipient_hash_key_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(env.recipient_hash_key_secret_arn, max_age=3600)).encode()
    return (env.recipient_hash_key or "").encode()


def build_dispatcher(env: DialerEnv) -> Dispatcher:
    from dialer_worker.deferral import Deferrer
    from dialer_worker.pacing import RedisPacer
    from dialer_worker.worker_client import WorkerClient

    redis = redis_client(env)
    return Dispatcher(
        config=env,
        pacer=RedisPacer(
            redis,
            prefix=env.key_prefix,
            claim_ttl_seconds=env.claim_ttl_seconds,
            recipient_daily_limit=env.recipient_daily_limit,
            max_concurrent_calls=env.max_concurrent_calls,
            max_call_seconds=env.max_call_seconds,
        ),
        recipient_key=recipient_key(env),
        live_rate=build_live_rate(env, redis),
        worker=WorkerClient(env.worker_url),
        deferrer=Deferrer(env.defer_queue_url, _sqs_client),
        # POSTs leave at their slots even when the worker is slow to answer.
        executor=ThreadPoolExecutor(max_workers=10, thread_name_prefix="dial"),
    )


def _get_dispatcher() -> Dispatcher:
    global _dispatcher
    # Lambda runs one invocation at a time per container; the local runner calls from several
    # threads, which must share one dispatcher as one container's invocations would.
    with _lock:
        if _dispatcher is None:
            _dispatcher = build_dispatcher(DialerEnv.from_environ())
        return _dispatcher


def reset() -> None:
    """Forget this container's clients and state, as a new container would (the local runner)."""
    global _dispatcher, _warned_redis_down
    with _lock:
        if _dispatcher is not None:
            _dispatcher.executor.shutdown(wait=False)
        _dispatcher = None
        _warned_redis_down = False


@logger.inject_lambda_context
def handler(event, context):
    if not isinstance(event, list):
        logger.error("event is not the array the enrichment returns", extra={"type": type(event).__name__})
    dispatcher = _get_dispatcher()
    report = dispatcher.run(event, context.get_remaining_time_in_millis)
    live = dispatcher.live_rate
    if live is not None and live.last_error:
        # Paced at the last good value (the ceiling before the first), until the next read.
        logger.warning("live MAX_CPS not read", extra={"error": live.last_error, "maxCps": live.current()})
    _observe(report)
    publish(DIALER_SERVICE, report)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failures]}


def _observe(report: BatchReport) -> None:
    global _warned_redis_down
    log_and_count_drops(logger, service=DIALER_SERVICE, metric=Metric.DIALS_DROPPED, drops=report.drops)
    # Why tasks had to wait (rate, in_flight, outside_window, redis_down, late, stopped,
    # live_calls, paused): the alarm on
    # the rate-limited share reads Reason=rate only.
    count_by_reason(service=DIALER_SERVICE, metric=Metric.DEFERRED, counts=report.deferrals)
    for message_id, why in report.defer_failures:
        # The task is retried as a batch item failure; if it keeps failing it reaches the DLQ undialed.
        logger.warning("deferral not sent", extra={"messageId": message_id, "reason": why})
    # One metric set per invocation: the module-level Metrics shares its set across instances,
    # and the local runner calls this handler from several threads at once.
    metrics = EphemeralMetrics(service=DIALER_SERVICE)
    for name in _COUNTED:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.counts[name])
    if report.pacing_delay_ms:
        metrics.add_metric(name=Metric.PACING_DELAY_MS, unit=MetricUnit.Milliseconds, value=max(report.pacing_delay_ms))
    if report.effective_cps is not None:
        metrics.add_metric(name=Metric.EFFECTIVE_CPS, unit=MetricUnit.Count, value=report.effective_cps)
    metrics.add_metric(name=Metric.REDIS_UNAVAILABLE, unit=MetricUnit.Count, value=1 if report.redis_unavailable else 0)
    metrics.add_metric(name=Metric.CLAIMS_RESET, unit=MetricUnit.Count, value=1 if report.claims_reset else 0)
    if report.claims_reset:
        logger.error(
            "Redis lost its dial claims (epoch changed): calls in flight may be re-sent; the worker's Idempotency-Key must stop them"
        )
    if report.fleet_live is not None:
        metrics.add_metric(name=Metric.LIVE_CALLS, unit=MetricUnit.Count, value=report.fleet_live)
    metrics.flush_metrics()
    # Live calls per campaign after admission (dimension campaignId): what the caps are held to.
    count_by_dimension(
        service=DIALER_SERVICE, metric=Metric.LIVE_CALLS, dimension="campaignId", values=report.campaign_live
    )
    if report.redis_unavailable and not _warned_redis_down:
        _warned_redis_down = True
        logger.error(
            "Redis unreachable: pacing locally at MAX_CPS / reserved concurrency", extra={"error": report.redis_error}
        )
    elif not report.redis_unavailable and _warned_redis_down:
        _warned_redis_down = False
        logger.info("Redis reachable again: fleet-wide pacing restored")
    logger.info(
        "batch dialed",
        extra={
            **dict(report.counts),
            "failures": len(report.failures),
            "effectiveCps": report.effective_cps,
            "redisUnavailable": report.redis_unavailable,
        },
    )
