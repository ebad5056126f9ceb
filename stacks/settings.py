"""Per-environment settings: everything tunable, written once.

The stacks and the local runner (`local_pipeline`) read the same object, so the batch size,
batching window, filter, receive count and timeouts that run on a laptop are the ones
`cdk deploy` ships. Nothing else in the code branches on an environment's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A pipe execution (enrichment and target together) may last at most 5 minutes.
PIPE_MAX_EXECUTION_SECONDS = 300
# Pipes accepts 1 to 10 000 records per batch from SQS; 10 is the most a single
# SQS receive returns without a batching window, and what the design asks for.
PIPE_MAX_BATCH_SIZE = 10_000
# Lambda keeps this much of an account's concurrency unreserved: reservations may not go below it.
LAMBDA_UNRESERVED_MINIMUM = 100
# What the `AlarmEmail` parameter accepts (CloudFormation's AllowedPattern, and the settings' check).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# The pipe filter of docs/design.md: only bodies with a phoneNumber reach the enrichment.
DIAL_TASK_FILTER: Mapping[str, Any] = {"body": {"phoneNumber": [{"exists": True}]}}


def worker_url_pattern(port: int) -> str:
    """An http(s) base URL (host, optional path, no query) whose port is `port`: https on 443,
    http on 80, either with an explicit `:port` otherwise."""
    host = r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
    path = r"(/[^\s?#]*)?"
    if port == 443:
        return rf"^https://{host}(:443)?{path}$"
    if port == 80:
        return rf"^http://{host}(:80)?{path}$"
    return rf"^https?://{host}:{port}{path}$"


@dataclass(frozen=True)
class FunctionSettings:
    """Size and limits of one Lambda function."""

    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10_240:
            raise ValueError(f"memory_mb must be 128..10240, got {self.memory_mb}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ValueError(f"timeout_seconds must be 1..900, got {self.timeout_seconds}")
        if self.reserved_concurrency < 1:
            raise ValueError("reserved_concurrency must be at least 1")


@dataclass(frozen=True)
class PipeSettings:
    """The EventBridge Pipe between the queue and the dialer."""

    batch_size: int = 10
    # How long a partial batch waits to fill. A backlog fills batches at once; what waits is a
    # deferred task come back from its hop (a late call's 1 s), which a longer window would keep
    # up to that much longer than it asked for.
    batching_window_seconds: int = 1
    filter_pattern: Mapping[str, Any] = field(default_factory=lambda: DIAL_TASK_FILTER)
    # How many pipe executions the local runner keeps in flight, as Pipes scales pollers.
    local_parallel_executions: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= PIPE_MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{PIPE_MAX_BATCH_SIZE}")
        if not 0 <= self.batching_window_seconds <= 300:
            raise ValueError("batching_window_seconds must be 0..300")
        if self.batch_size > 10 and self.batching_window_seconds < 1:
            raise ValueError("a batch above 10 records needs a batching window of at least 1 s")

    @property
    def filter_pattern_json(self) -> str:
        return json.dumps(self.filter_pattern, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class DatabaseSettings:
    """RDS PostgreSQL holding the campaigns table."""

    instance_class: str  # an ec2.InstanceClass value, e.g. "burstable4_graviton"
    instance_size: str  # an ec2.InstanceSize value, e.g. "micro"
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    # RDS Proxy pools connections when enrichment containers could outnumber max_connections.
    use_proxy: bool
    # max_connections PostgreSQL derives from the instance's memory (LEAST(DBInstanceClassMemory/9531392, 5000)).
    max_connections: int
    credentials_rotation_days: int = 30
    # RDS Enhanced Monitoring (OS metrics) interval in seconds; 0 switches it off.
    enhanced_monitoring_seconds: int = 0
    # PostgreSQL major.minor: a major alone lets RDS pick the minor at creation (cfn-lint W3691:
    # "17" counts as deprecated). A version new instances start at; auto minor upgrades move a
    # running one on, so raise this, never lower it below what runs (RDS refuses downgrades).
    engine_version: str = "17.9"

    def __post_init__(self) -> None:
        if self.enhanced_monitoring_seconds not in (0, 1, 5, 10, 15, 30, 60):
            raise ValueError("enhanced_monitoring_seconds must be one of 0, 1, 5, 10, 15, 30, 60")
        if not re.fullmatch(r"\d+\.\d+", self.engine_version):
            raise ValueError(
                f"engine_version must be a full PostgreSQL version (major.minor), got {self.engine_version!r}"
            )


@dataclass(frozen=True)
class CacheSettings:
    """ElastiCache (Valkey/Redis OSS) holding the pacing state and the dial claims."""

    node_type: str
    replicas: int  # read replicas per shard; automatic failover needs at least 1
    multi_az: bool
    snapshot_retention_days: int
    # Not the engine's default 6379: the dialer reads REDIS_PORT, so moving it costs nothing.
    port: int = 6380


@dataclass(frozen=True)
class QueueSettings:
    """The dial-tasks queue and its dead-letter queue."""

    max_receive_count: int = 5
    retention_days: int = 4
    dlq_retention_days: int = 14
    # Alarm when the oldest dial task has waited this long: a stalled pipe, not a busy one.
    oldest_message_alarm_seconds: int = 900

    def __post_init__(self) -> None:
        if self.max_receive_count < 5:
            raise ValueError("max_receive_count must be at least 5 (docs/design.md, decision 6)")


@dataclass(frozen=True)
class Settings:
    """Everything that differs between environments."""

    name: str
    pipe: PipeSettings
    enrichment: FunctionSettings
    dialer: FunctionSettings
    database: DatabaseSettings
    cache: CacheSettings
    queue: QueueSettings = field(default_factory=QueueSettings)
    # The call-events handler: small batches of worker reports, one script call each.
    call_events: FunctionSettings = field(
        default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=30, reserved_concurrency=5)
    )
    # The call ledger's writer (call_ledger): batches of records from the records queue, one
    # statement each, and the daily retention job. Two at a time: each holds one connection to
    # the instance itself (its retention drops partitions: DDL, the tables' owner).
    ledger: FunctionSettings = field(
        default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=60, reserved_concurrency=2)
    )
    # How long the ledger keeps a record: whole months go once every row in them is older. At
    # least 4 years in production: the TCPA's limitations period for a claim about a call.
    call_record_retention_days: int = 1461
    # The ledger's event source: records per invocation (one statement writes them all), and how
    # long a batch may gather (the stack's mapping and the local runner's).
    call_records_batch_size: int = 100
    call_records_batching_window_seconds: int = 2
    # Alarm when a record has waited this long in the records queue: the ledger cannot write
    # (PostgreSQL down, a bad deploy); records wait meanwhile, none is lost before the DLQ.
    call_records_oldest_message_alarm_seconds: int = 300
    # The deploy-time migration function (db_migrate): one run at a time, a few statements.
    migration: FunctionSettings = field(
        default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=120, reserved_concurrency=1)
    )
    # Base URL of the Node.js dial worker (outside this repo); the dialer POSTs to {url}/dial.
    # It is the stack parameter `WorkerUrl`, with no default: every deploy names its worker
    # (`--parameters WorkerUrl=https://...`). A value here becomes the parameter's default.
    node_worker_url: str | None = None
    # The port the dialer may open to the worker (its only egress outside the VPC); `WorkerUrl`
    # must use it: 443 means https://, 80 http://, any other an explicit :port.
    node_worker_port: int = 443
    max_cps: int = 100
    campaign_cache_ttl_seconds: int = 5
    # How long a dial claim lives in Redis: longer than a task can keep being redelivered.
    claim_ttl_seconds: int = 86_400
    # Redis back empty: the dialers hold this long at most for the ledger to restore the claims
    # and recipient counts (a restore takes about a second), then dial without them (an alarm).
    restore_hold_seconds: int = 20
    # Dial-time compliance. The legal calling hours in the recipient's local time, every day (a
    # campaign's callingWindow narrows them, never widens them); the zone used when neither the
    # task, the number nor the campaign gives one; a task's maximum age since its first enqueue.
    calling_hours: str = "08:00-21:00"
    default_time_zone: str = "America/New_York"
    task_max_age_hours: float = 24
    # At most this many calls to one number in any 24 h, across campaigns (0: no limit).
    recipient_daily_limit: int = 3
    # The closed loop (docs/design.md, "Call events"). A live call's lease: it stops counting
    # against the live-call caps after this long even when its call event never comes.
    max_call_seconds: int = 900
    # The fleet's live calls at once (the stack parameter MaxConcurrentCalls' default; 0: no
    # limit). Set it to the trunks' channel count at deploy; a campaign's own cap is its config's.
    max_concurrent_calls: int = 0
    # Answer-rate pacing per campaign: over its last `window` outcomes, with at least
    # `min_samples`, a share of answered + machine under its minAnswerRate halves its pace (floor
    # 0.1), at most once per cool-down; at or over it, +0.1 per cool-down back up to 1.
    answer_rate_window: int = 50
    answer_rate_min_samples: int = 20
    answer_rate_cool_down_seconds: int = 30
    # Alarm when dials are sent but no call event has come for this long: the worker stopped
    # reporting, and live calls would sit at their leases (max_call_seconds) meanwhile.
    call_events_silence_alarm_minutes: int = 15
    # Lambda's concurrent-executions quota in the environment's account and region (Service Quotas
    # "Concurrent executions"; 1000 by default). Reservations may use all but LAMBDA_UNRESERVED_MINIMUM.
    account_concurrency_quota: int = 1_000
    vpc_cidr: str = "10.40.0.0/16"
    max_azs: int = 2
    nat_gateways: int = 1
    log_retention_days: int = 30
    # On stack deletion, keep the queues, the DLQ, the secrets and the RDS log group (RETAIN)
    # instead of deleting them; the database itself always leaves a snapshot.
    retain_on_delete: bool = False
    log_level: str = "INFO"
    # The alarm topic's e-mail subscription is the stack parameter `AlarmEmail`. Required: the
    # parameter has no default (unless `alarm_email` gives one), so a deploy without
    # `--parameters AlarmEmail=...` fails. Not required: empty by default, and then no subscription.
    alarm_email_required: bool = True
    alarm_email: str | None = None
    region: str | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        if self.alarm_email is not None and not re.fullmatch(EMAIL_PATTERN, self.alarm_email):
            raise ValueError(f"{self.name}: alarm_email {self.alarm_email!r} is not an e-mail address")
        if self.reserved_concurrency_total > self.reservable_concurrency:
            raise ValueError(
                f"{self.name}: the functions reserve {self.reserved_concurrency_total} concurrent executions "
                f"(enrichment {self.enrichment.reserved_concurrency}, dialer {self.dialer.reserved_concurrency}, "
                f"migration {self.migration.reserved_concurrency}, call events {self.call_events.reserved_concurrency}, "
                f"ledger {self.ledger.reserved_concurrency}), "
                f"more than the {self.reservable_concurrency} the "
                f"account may reserve (account_concurrency_quota {self.account_concurrency_quota} minus Lambda's "
                f"unreserved minimum {LAMBDA_UNRESERVED_MINIMUM}); raise the quota or lower the reservations"
            )
        if not 1 <= self.node_worker_port <= 65_535:
            raise ValueError(f"{self.name}: node_worker_port must be 1..65535")
        if self.node_worker_url is not None and not re.fullmatch(self.worker_url_pattern, self.node_worker_url):
            raise ValueError(
                f"{self.name}: node_worker_url {self.node_worker_url!r} is not an http(s) URL on port "
                f"{self.node_worker_port} (the port the dialer may reach)"
            )
        if self.max_cps < 1:
            raise ValueError("max_cps must be at least 1")
        if self.max_call_seconds < 1 or self.max_concurrent_calls < 0:
            raise ValueError(f"{self.name}: max_call_seconds must be >= 1 and max_concurrent_calls >= 0")
        if not 1 <= self.answer_rate_min_samples <= self.answer_rate_window or self.answer_rate_cool_down_seconds < 1:
            raise ValueError(
                f"{self.name}: answer_rate_min_samples must be 1..answer_rate_window and the cool-down at least 1 s"
            )
        if self.call_record_retention_days < 1:
            raise ValueError(f"{self.name}: call_record_retention_days must be at least 1")
        if self.campaign_cache_ttl_seconds < 0:
            raise ValueError("campaign_cache_ttl_seconds must be >= 0 (0 disables the cache)")
        if self.pipe_execution_seconds > PIPE_MAX_EXECUTION_SECONDS:
            raise ValueError(
                f"enrichment + dialer timeouts ({self.pipe_execution_seconds} s) exceed the "
                f"pipe's {PIPE_MAX_EXECUTION_SECONDS} s execution limit"
            )
        # Each enrichment container holds one connection; half of max_connections stays for
        # the rest of the platform, which shares this database.
        if not self.database.use_proxy and self.enrichment.reserved_concurrency > self.database.max_connections // 2:
            raise ValueError(
                f"{self.name}: enrichment concurrency {self.enrichment.reserved_concurrency} can exceed "
                f"half of max_connections ({self.database.max_connections}); set database.use_proxy"
            )

    @property
    def stack_name(self) -> str:
        return f"DialPipeline-{self.name}"

    @property
    def reserved_concurrency_total(self) -> int:
        """What the environment's functions reserve of the account's Lambda concurrency."""
        return (
            self.enrichment.reserved_concurrency
            + self.dialer.reserved_concurrency
            + self.migration.reserved_concurrency
            + self.call_events.reserved_concurrency
            + self.ledger.reserved_concurrency
        )

    @property
    def reservable_concurrency(self) -> int:
        return self.account_concurrency_quota - LAMBDA_UNRESERVED_MINIMUM

    @property
    def worker_url_pattern(self) -> str:
        """The `WorkerUrl` parameter's AllowedPattern: an http(s) base URL on `node_worker_port`."""
        return worker_url_pattern(self.node_worker_port)

    @property
    def metrics_namespace(self) -> str:
        return f"DialPipeline/{self.name}"

    @property
    def pipe_execution_seconds(self) -> int:
        """Worst case of one pipe execution: the enrichment, then the target."""
        return self.enrichment.timeout_seconds + self.dialer.timeout_seconds

    @property
    def redis_quarantine_seconds(self) -> int:
        """After Redis fails, slots reserved there may still be dialed by their owners for up to
        one dialer timeout: the dialer paces locally only after that."""
        return self.dialer.timeout_seconds

    @property
    def call_events_visibility_timeout_seconds(self) -> int:
        """AWS guidance for an SQS event source: at least six times the function's timeout."""
        return 6 * self.call_events.timeout_seconds

    @property
    def call_records_visibility_timeout_seconds(self) -> int:
        """AWS guidance for an SQS event source: at least six times the function's timeout."""
        return 6 * self.ledger.timeout_seconds

    @property
    def visibility_timeout_seconds(self) -> int:
        """AWS guidance for Pipes and Lambda with an SQS source: at least six times the
        worst-case execution, plus the batching window the records wait in."""
        return 6 * self.pipe_execution_seconds + self.pipe.batching_window_seconds


# The dialer's memory, in every environment: CPU comes with it (1,769 MB is one vCPU), and the
# dialer needs CPU at its slots. 256 MB is the smallest size at which five dialers sharing MAX_CPS
# 100 keep every target of benchmarks/bench_lambda_share.py; 128 MB leaves calls late. Why, and
# what a million dials cost: docs/dialer.md#memory.
DIALER_MEMORY_MB = 256

DEV = Settings(
    name="dev",
    pipe=PipeSettings(),
    enrichment=FunctionSettings(memory_mb=256, timeout_seconds=5, reserved_concurrency=5),
    dialer=FunctionSettings(memory_mb=DIALER_MEMORY_MB, timeout_seconds=15, reserved_concurrency=5),
    database=DatabaseSettings(
        instance_class="burstable4_graviton",
        instance_size="micro",
        allocated_storage_gb=20,
        max_allocated_storage_gb=50,
        multi_az=False,
        deletion_protection=False,
        backup_retention_days=1,
        use_proxy=False,
        max_connections=81,
    ),
    cache=CacheSettings(node_type="cache.t4g.micro", replicas=0, multi_az=False, snapshot_retention_days=1),
    alarm_email_required=False,
    max_cps=20,
    # Short: a development stack's records are test traffic.
    call_record_retention_days=30,
    log_level="DEBUG",
    log_retention_days=14,
    vpc_cidr="10.40.0.0/16",
)

STAGING = Settings(
    name="staging",
    pipe=PipeSettings(),
    enrichment=FunctionSettings(memory_mb=256, timeout_seconds=5, reserved_concurrency=20),
    dialer=FunctionSettings(memory_mb=DIALER_MEMORY_MB, timeout_seconds=15, reserved_concurrency=20),
    database=DatabaseSettings(
        instance_class="burstable4_graviton",
        instance_size="small",
        allocated_storage_gb=20,
        max_allocated_storage_gb=100,
        multi_az=False,
        deletion_protection=False,
        backup_retention_days=7,
        use_proxy=False,
        max_connections=171,
    ),
    cache=CacheSettings(node_type="cache.t4g.small", replicas=1, multi_az=True, snapshot_retention_days=3),
    max_cps=50,
    call_record_retention_days=90,
    vpc_cidr="10.41.0.0/16",
)

PROD = Settings(
    name="prod",
    pipe=PipeSettings(),
    enrichment=FunctionSettings(memory_mb=256, timeout_seconds=5, reserved_concurrency=100),
    dialer=FunctionSettings(memory_mb=DIALER_MEMORY_MB, timeout_seconds=15, reserved_concurrency=50),
    database=DatabaseSettings(
        instance_class="memory6_graviton",
        instance_size="large",
        allocated_storage_gb=50,
        max_allocated_storage_gb=200,
        multi_az=True,
        deletion_protection=True,
        backup_retention_days=14,
        use_proxy=True,
        max_connections=1_700,
        enhanced_monitoring_seconds=60,
    ),
    cache=CacheSettings(node_type="cache.r7g.large", replicas=1, multi_az=True, snapshot_retention_days=7),
    max_cps=100,
    call_record_retention_days=1461,
    log_retention_days=90,
    retain_on_delete=True,
    nat_gateways=2,
    max_azs=3,
    vpc_cidr="10.42.0.0/16",
)

ENVIRONMENTS: Mapping[str, Settings] = {s.name: s for s in (DEV, STAGING, PROD)}


def check_account_concurrency(environments: Iterable[Settings]) -> None:
    """Environments deployed to one account share its Lambda concurrency: their reservations
    together must fit too. Environments without `account` are taken to share one account, as they
    do when deployed with the same credentials."""
    by_account: dict[str | None, list[Settings]] = {}
    for settings in environments:
        by_account.setdefault(settings.account, []).append(settings)
    for account, group in by_account.items():
        total = sum(s.reserved_concurrency_total for s in group)
        reservable = min(s.reservable_concurrency for s in group)
        if total > reservable:
            parts = " + ".join(f"{s.name} {s.reserved_concurrency_total}" for s in group)
            where = f"account {account}" if account else "one account (no `account` set)"
            raise ValueError(
                f"environments in {where} reserve {parts} = {total} concurrent executions, more than the "
                f"{reservable} that account may reserve (account_concurrency_quota minus Lambda's unreserved "
                f"minimum {LAMBDA_UNRESERVED_MINIMUM}); pin `account` per environment or lower the reservations"
            )


def settings_for(name: str) -> Settings:
    """The settings of the environment called `name`; a clear error for any other name."""
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise ValueError(f"unknown environment {name!r}; known environments: {known}") from None
