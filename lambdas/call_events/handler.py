"""SQS event source mapping target: the worker's call events close the loop (live calls, answer
rate, pace). Answers the records to retry; a Redis fault fails the whole batch (retried)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from call_events.env import CallEventsEnv
from call_events.events import CallEvent, EventDrop, parse_record
from call_events.loop import CallLoop, LoopResult
from shared.observability import CALL_EVENTS_SERVICE, Metric, count_by_dimension, count_by_reason, publish
from shared.redis_client import redis_client

logger = Logger(service=CALL_EVENTS_SERVICE)
tracer = Tracer(service=CALL_EVENTS_SERVICE)

_loop: CallLoop | None = None
_lock = threading.Lock()


@dataclass
class CallEventsReport:
    """One batch: what was counted, repeated, dropped, and the campaigns' state after it."""

    records: int = 0
    drops: list[EventDrop] = field(default_factory=list)
    result: LoopResult = field(default_factory=LoopResult)


def build_loop(env: CallEventsEnv) -> CallLoop:
    return CallLoop(
        redis_client(env),
        prefix=env.key_prefix,
        window=env.answer_rate_window,
        min_samples=env.answer_rate_min_samples,
        cool_down_seconds=env.answer_rate_cool_down_seconds,
        seen_ttl_s=max(4 * 86_400, 2 * env.max_call_seconds),
    )


def _get_loop() -> CallLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = build_loop(CallEventsEnv.from_environ())
        return _loop


def reset() -> None:
    """Forget this container's client, as a new container would (the local runner)."""
    global _loop
    with _lock:
        _loop = None


def process(records: list, loop: CallLoop) -> CallEventsReport:
    report = CallEventsReport(records=len(records))
    events: list[CallEvent] = []
    for record in records:
        parsed = parse_record(record)
        if isinstance(parsed, EventDrop):
            report.drops.append(parsed)
        else:
            events.append(parsed)
    report.result = loop.record(events)
    return report


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        logger.error("event is not the {'Records': [...]} of an SQS event source mapping")
        records = []
    # Redis errors propagate: the function fails and the whole batch comes back.
    report = process(records, _get_loop())
    _observe(report)
    publish(CALL_EVENTS_SERVICE, report)
    # Every record was either counted, a repeat, or dropped for good: nothing to retry.
    return {"batchItemFailures": []}


def _observe(report: CallEventsReport) -> None:
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
    reasons: dict[str, int] = {}
    for drop in report.drops:
        reasons[str(drop.reason)] = reasons.get(str(drop.reason), 0) + 1
    count_by_reason(service=CALL_EVENTS_SERVICE, metric=Metric.CALL_EVENTS_DROPPED, counts=reasons)
    result = report.result
    metrics = EphemeralMetrics(service=CALL_EVENTS_SERVICE)
    metrics.add_metric(name=Metric.CALL_EVENTS_PROCESSED, unit=MetricUnit.Count, value=len(result.counted))
    metrics.add_metric(name=Metric.CALL_EVENTS_DUPLICATE, unit=MetricUnit.Count, value=len(result.duplicates))
    metrics.add_metric(name=Metric.CALL_EVENTS_DROPPED, unit=MetricUnit.Count, value=len(report.drops))
    if result.counted or result.duplicates:
        metrics.add_metric(name=Metric.LIVE_CALLS, unit=MetricUnit.Count, value=result.fleet_live)
    metrics.flush_metrics()
    campaigns = result.campaigns
    rates = {c: s.answer_rate for c, s in campaigns.items() if s.answer_rate is not None}
    count_by_dimension(service=CALL_EVENTS_SERVICE, metric=Metric.ANSWER_RATE, dimension="campaignId", values=rates)
    count_by_dimension(
        service=CALL_EVENTS_SERVICE,
        metric=Metric.PACE_FACTOR,
        dimension="campaignId",
        values={c: s.pace_factor for c, s in campaigns.items()},
    )
    count_by_dimension(
        service=CALL_EVENTS_SERVICE,
        metric=Metric.LIVE_CALLS,
        dimension="campaignId",
        values={c: s.live_calls for c, s in campaigns.items()},
    )
    slowed = {c: s.pace_factor for c, s in campaigns.items() if s.pace_factor < 1}
    logger.info(
        "call events recorded",
        extra={
            "records": report.records,
            "counted": len(result.counted),
            "duplicates": len(result.duplicates),
            "dropped": len(report.drops),
            "fleetLive": result.fleet_live,
            "slowedCampaigns": slowed,
        },
    )
