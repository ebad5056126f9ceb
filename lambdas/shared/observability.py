"""Service names, metric names, and the "log it and count it" of a drop and of counts by dimension.

Every function's telemetry, the stack's alarms and dashboard, and the local runner take their
names from here. `namespace=None` leaves the metrics' namespace to Powertools
(POWERTOOLS_METRICS_NAMESPACE, as the stack sets it); the local runner passes its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.drops import Drop
from shared.env_contract import EnvContract, variable
from shared.masking import mask_phone

# Fixed here rather than only in POWERTOOLS_SERVICE_NAME: the alarms and the local runner rely on
# these dimension values, and the handlers share one process locally.
ENRICHMENT_SERVICE = "enrich-dial-task"
DIALER_SERVICE = "dialer-worker"
MIGRATION_SERVICE = "db-migrate"
CALL_EVENTS_SERVICE = "call-events"
LEDGER_SERVICE = "call-ledger"


class Metric:
    """Metric names (namespace DialPipeline/<env>, dimension `Dimension.SERVICE`)."""

    TASKS_ENRICHED = "TasksEnriched"
    TASKS_DROPPED = "TasksDropped"  # enrichment, by Reason
    CAMPAIGN_QUERIES = "CampaignQueries"
    DIALS_SENT = "DialsSent"
    DIALS_FAILED = "DialsFailed"
    DIALS_DROPPED = "DialsDropped"  # dialer, by Reason
    DEFERRED = "Deferred"
    DEFER_FAILED = "DeferFailed"  # a task that had to wait could not be re-queued
    DUPLICATE_SUPPRESSED = "DuplicateSuppressed"
    WORKER_OVERLOADED = "WorkerOverloaded"
    PACING_DELAY_MS = "PacingDelayMs"
    EFFECTIVE_CPS = "EffectiveCps"
    REDIS_UNAVAILABLE = "RedisUnavailable"
    CLAIMS_RESET = "ClaimsKeyspaceReset"  # Redis came back without its dial claims
    # The restore hold reached its bound before the ledger restored the claims: dialing went on
    # without them (an alarm). Counted once per hold, by the batch that ended it.
    RESTORE_TIMED_OUT = "RestoreTimedOut"
    # The closed loop. LiveCalls: fleet (no campaignId) and per campaign (dimension campaignId),
    # from the dialer after admission and from the call-events handler after each batch.
    LIVE_CALLS = "LiveCalls"
    CALL_EVENTS_PROCESSED = "CallEventsProcessed"
    CALL_EVENTS_DUPLICATE = "CallEventsDuplicate"
    CALL_EVENTS_DROPPED = "CallEventsDropped"  # by Reason
    ANSWER_RATE = "AnswerRate"  # per campaign: answered + machine over the window
    PACE_FACTOR = "PaceFactor"  # per campaign: the share of its rate it is dialed at
    # The call ledger. Producers (enrichment, dialer, call events): records SQS acknowledged, and
    # those it did not (their items are retried). The ledger function: rows written new, records
    # merged into a row already there, records dropped (by Reason), retries put on the dial-tasks
    # queue, retries not made (by Reason), outcomes still without their attempt (orphans).
    RECORDS_SENT = "LedgerRecordsSent"
    RECORDS_NOT_SENT = "LedgerRecordsNotSent"
    RECORDS_WRITTEN = "LedgerRecordsWritten"
    RECORDS_MERGED = "LedgerRecordsMerged"
    RECORDS_DROPPED = "LedgerRecordsDropped"  # by Reason
    RETRIES_ENQUEUED = "RetriesEnqueued"
    RETRIES_SKIPPED = "RetriesSkipped"  # by Reason
    LEDGER_ORPHANS = "LedgerOrphans"
    PARTITIONS_DROPPED = "LedgerPartitionsDropped"  # the retention job


class Dimension:
    """Dimension names of those metrics: every metric has SERVICE; some split by REASON or CAMPAIGN."""

    SERVICE = "service"
    REASON = "Reason"  # a drop's DropReason, a deferral's reason
    CAMPAIGN = "campaignId"


@dataclass(frozen=True, kw_only=True)
class ObservabilityEnv(EnvContract):
    """Read by Powertools itself; the stack and the local runner set it with `variables()`."""

    service_name: str = variable("POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = variable("POWERTOOLS_METRICS_NAMESPACE")
    log_level: str = variable("LOG_LEVEL", default="INFO")
    trace_disabled: bool = variable("POWERTOOLS_TRACE_DISABLED", default=False)


def log_and_count_drops(
    logger: Any, *, service: str, metric: str, drops: Iterable[Drop], namespace: str | None = None
) -> None:
    """One warning line and one count (dimension Reason) per drop: all that remains of the task."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for drop in drops:
        logger.warning(
            "dial task dropped",
            extra={
                "reason": str(drop.reason),
                "detail": drop.detail,
                "messageId": drop.message_id,
                "correlation_id": drop.message_id,
                "campaignId": drop.campaign_id,
                "phoneNumber": mask_phone(drop.phone_number),
            },
        )
        with single_metric(
            name=metric, unit=MetricUnit.Count, value=1, namespace=namespace, default_dimensions={"service": service}
        ) as m:
            m.add_dimension(name="Reason", value=str(drop.reason))


def count_by_reason(*, service: str, metric: str, counts: Mapping[str, int], namespace: str | None = None) -> None:
    """One count per reason (dimension Reason), beside the metric's total."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for reason, value in counts.items():
        if value:
            with single_metric(
                name=metric,
                unit=MetricUnit.Count,
                value=value,
                namespace=namespace,
                default_dimensions={"service": service},
            ) as m:
                m.add_dimension(name="Reason", value=reason)


def count_by_dimension(
    *, service: str, metric: str, dimension: str, values: Mapping[str, float], namespace: str | None = None
) -> None:
    """One value per key of `values` (dimension `dimension`), e.g. live calls per campaign."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for key, value in values.items():
        with single_metric(
            name=metric,
            unit=MetricUnit.Count,
            value=value,
            namespace=namespace,
            default_dimensions={"service": service},
        ) as m:
            m.add_dimension(name=dimension, value=str(key))
