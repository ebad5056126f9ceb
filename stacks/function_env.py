"""Each function's environment from the settings: the one mapping from `Settings` to a function's
contract fields (`<function>/env.py`), used by the stack (with CDK tokens for what is known only at
deploy time), the local runner (with its local services) and the tests.

Each returns {contract field: value}: the stack writes it with `Contract.variables(**fields)`,
the local runner and the tests build `Contract(**fields)` from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacks.settings import Settings


def redis_fields(
    host: Any, port: Any, *, tls: bool, auth_secret_arn: Any = None, key_prefix: str | None = None
) -> dict[str, Any]:
    """The RedisEnv fields: deployed, ElastiCache over TLS with its auth token; locally a plain
    Redis under a key prefix of its own (unset: the contract's default)."""
    fields: dict[str, Any] = {"host": host, "port": port, "tls": tls}
    if auth_secret_arn is not None:
        fields["auth_secret_arn"] = auth_secret_arn
    if key_prefix is not None:
        fields["key_prefix"] = key_prefix
    return fields


def dialer_fields(
    settings: Settings,
    *,
    redis: Mapping[str, Any],
    worker_url: Any,
    defer_queue_url: Any,
    max_cps: Any = None,
    max_cps_parameter_name: Any = None,
    max_concurrent_calls: Any = None,
    reserved_concurrency: int | None = None,
    recipient_hash_key_secret_arn: Any = None,
    recipient_hash_key: str | None = None,
    call_records_queue_url: Any = None,
) -> dict[str, Any]:
    """The DialerEnv fields. `max_cps` and `max_concurrent_calls` default to the settings (the
    stack passes its parameters), `reserved_concurrency` to the dialer's; the recipient hash key
    is a secret's ARN deployed, a key of the run's own locally."""
    return {
        **redis,
        "worker_url": worker_url,
        "max_cps": settings.max_cps if max_cps is None else max_cps,
        "max_cps_parameter_name": max_cps_parameter_name,
        "reserved_concurrency": settings.dialer.reserved_concurrency
        if reserved_concurrency is None
        else reserved_concurrency,
        "claim_ttl_seconds": settings.claim_ttl_seconds,
        "restore_hold_seconds": settings.restore_hold_seconds,
        "redis_quarantine_seconds": settings.redis_quarantine_seconds,
        "calling_hours": settings.calling_hours,
        "default_time_zone": settings.default_time_zone,
        "task_max_age_hours": settings.task_max_age_hours,
        "recipient_daily_limit": settings.recipient_daily_limit,
        "recipient_hash_key_secret_arn": recipient_hash_key_secret_arn,
        "recipient_hash_key": recipient_hash_key,
        "max_concurrent_calls": settings.max_concurrent_calls if max_concurrent_calls is None else max_concurrent_calls,
        "max_call_seconds": settings.max_call_seconds,
        "defer_queue_url": defer_queue_url,
        "call_records_queue_url": call_records_queue_url,
    }


def call_events_fields(
    settings: Settings, *, redis: Mapping[str, Any], call_records_queue_url: Any = None
) -> dict[str, Any]:
    """The CallEventsEnv fields: the same Redis as the dialer's, the answer-rate rules, the lease,
    the ledger's records queue."""
    return {
        **redis,
        "call_records_queue_url": call_records_queue_url,
        "answer_rate_window": settings.answer_rate_window,
        "answer_rate_min_samples": settings.answer_rate_min_samples,
        "answer_rate_cool_down_seconds": settings.answer_rate_cool_down_seconds,
        "max_call_seconds": settings.max_call_seconds,
    }


def enrichment_fields(
    settings: Settings,
    *,
    database: Mapping[str, Any],
    campaign_cache_ttl_seconds: float | None = None,
    call_records_queue_url: Any = None,
) -> dict[str, Any]:
    """The EnrichmentEnv fields: the campaigns database (deployed, the reader's secret and the
    proxy's host; locally DB_* values), the campaign cache's TTL (default: the settings') and the
    ledger's records queue."""
    ttl = settings.campaign_cache_ttl_seconds if campaign_cache_ttl_seconds is None else campaign_cache_ttl_seconds
    return {**database, "campaign_cache_ttl_seconds": ttl, "call_records_queue_url": call_records_queue_url}


def ledger_fields(
    settings: Settings,
    *,
    database: Mapping[str, Any],
    redis: Mapping[str, Any],
    dial_tasks_queue_url: Any,
    recipient_hash_key_secret_arn: Any = None,
    recipient_hash_key: str | None = None,
) -> dict[str, Any]:
    """The LedgerEnv fields: its database (deployed, the call_ledger_writer role's secret), the
    dialer's Redis (`redis_fields`, under LedgerEnv's redis_* names), where
    retries go, how long records are kept, and the claims' lifetime (for a restore)."""
    return {
        **database,
        **{f"redis_{name}": value for name, value in redis.items()},
        "dial_tasks_queue_url": dial_tasks_queue_url,
        "call_record_retention_days": settings.call_record_retention_days,
        "claim_ttl_seconds": settings.claim_ttl_seconds,
        # The dialer's recipient hash key: a restore puts the recipient counts back with it.
        "recipient_hash_key_secret_arn": recipient_hash_key_secret_arn,
        "recipient_hash_key": recipient_hash_key,
    }
