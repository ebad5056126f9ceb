"""Pipe target: dial each enriched task at its reserved slot; report only the items to retry."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from dialer_worker.config import DialerConfig
from dialer_worker.dispatch import Dispatcher
from shared.masking import mask_phone

SERVICE = "dialer-worker"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)

_dispatcher: Dispatcher | None = None
_warned_redis_down = False


def _redis_client(config: DialerConfig):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    password = None
    if config.redis_auth_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        password = parameters.get_secret(config.redis_auth_secret_arn, max_age=3600)
    # Short timeouts and one retry: a dead Redis must cost well under a second before the
    # dialer falls back to local pacing.
    return redis.Redis(
        host=config.redis_host,
        port=config.redis_port,
        ssl=config.redis_tls,
        password=password,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def _sqs_client():
    import boto3  # in the Lambda runtime; AWS_ENDPOINT_URL_SQS points it at a local SQS

    return boto3.client("sqs")


def build_dispatcher(config: DialerConfig) -> Dispatcher:
    from dialer_worker.deferral import Deferrer
    from dialer_worker.pacing import RedisPacer
    from dialer_worker.worker_client import WorkerClient

    return Dispatcher(
        config=config,
        pacer=RedisPacer(_redis_client(config), prefix=config.key_prefix, claim_ttl_seconds=config.claim_ttl_seconds),
        worker=WorkerClient(config.worker_url),
        deferrer=Deferrer(config.defer_queue_url, _sqs_client),
        # POSTs leave at their slots even when the worker is slow to answer.
        executor=ThreadPoolExecutor(max_workers=10, thread_name_prefix="dial"),
    )


def _get_dispatcher() -> Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = build_dispatcher(DialerConfig.from_env())
    return _dispatcher


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    global _warned_redis_down
    if not isinstance(event, list):
        logger.error("event is not the array the enrichment returns", extra={"type": type(event).__name__})
    report = _get_dispatcher().run(event, context.get_remaining_time_in_millis)

    for reason, message_id, phone in report.drops:
        logger.warning(
            "dial task dropped",
            extra={"reason": reason, "messageId": message_id, "phoneNumber": mask_phone(phone)},
        )
        with single_metric(
            name="DialsDropped", unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}
        ) as metric:
            metric.add_dimension(name="Reason", value=reason)
    # One metric set per invocation: the module-level Metrics shares its set across instances,
    # and the local runner calls this handler from several threads at once.
    metrics = EphemeralMetrics(service=SERVICE)
    for name in ("DialsSent", "DialsFailed", "Deferred", "DuplicateSuppressed", "WorkerOverloaded"):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.counts[name])
    if report.pacing_delay_ms:
        metrics.add_metric(name="PacingDelayMs", unit=MetricUnit.Milliseconds, value=max(report.pacing_delay_ms))
    if report.effective_cps is not None:
        metrics.add_metric(name="EffectiveCps", unit=MetricUnit.Count, value=report.effective_cps)
    metrics.add_metric(name="RedisUnavailable", unit=MetricUnit.Count, value=1 if report.redis_unavailable else 0)
    metrics.flush_metrics()
    if report.redis_unavailable and not _warned_redis_down:
        _warned_redis_down = True
        logger.error("Redis unreachable: pacing locally at MAX_CPS / reserved concurrency", extra={"error": report.redis_error})
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
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failures]}
