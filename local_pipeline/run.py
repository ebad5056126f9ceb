"""A whole local pipeline: real PostgreSQL and Redis, a local SQS, the worker stand-in, the real
handlers, and a pipe with the stacks' settings. Used by the demo, the end-to-end tests and the
load benchmark; every number in its summary is observed, not assumed."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from call_events import handler as call_events
from call_events.env import CallEventsEnv
from dialer_worker import handler as dialer
from dialer_worker.dispatch import BatchReport
from dialer_worker.env import GATES_OFF, DialerEnv
from dialer_worker.live_rate import LOCAL_KEY_NAME, REDIS_SCHEME, redis_key
from enrich_dial_task import handler as enrichment
from enrich_dial_task.enrich import EnrichmentReport
from enrich_dial_task.env import EnrichmentEnv
from local_pipeline.event_source import LocalEventSourceMapping
from local_pipeline.pipe import LocalPipe
from local_pipeline.services import PostgresServer, RedisServer
from local_pipeline.sqs_local import LocalSqsServer
from local_pipeline.worker_standin import WorkerStandIn, rolling_window_max
from shared import observability
from shared.observability import ObservabilityEnv
from stacks.settings import Settings


def pacing_only_env(**fields) -> DialerEnv:
    """A dialer environment for measuring pacing alone (the benchmarks): every other gate off."""
    base = dict(
        reserved_concurrency=1,
        claim_ttl_seconds=600,
        redis_quarantine_seconds=15,
        default_time_zone="America/New_York",
        max_call_seconds=900,
    )
    return DialerEnv(**{**base, **GATES_OFF, **fields})


def dialable_number(n: int, area_code: str = "415") -> str:
    """The n-th of a million valid US numbers (the exchange starts with 2-9), as phonenumbers wants."""
    return f"+1{area_code}{2 + n // 10**6 % 8}{n % 10**6:06d}"


class ReportObserver:
    """Adds up the reports the handlers publish: each drop with its reason, each batch's counts."""

    def __init__(self) -> None:
        self.drops: Counter = Counter()
        self.dial_counts: Counter = Counter()
        self.deferrals: Counter = Counter()
        self.effective_cps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, service: str, report: object) -> None:
        with self._lock:
            if isinstance(report, EnrichmentReport):
                self.drops.update(str(drop.reason) for drop in report.drops)
            elif isinstance(report, BatchReport):
                self.drops.update(str(drop.reason) for drop in report.drops)
                self.dial_counts.update(report.counts)
                self.deferrals.update(report.deferrals)
                self.dial_counts["RedisUnavailableBatches"] += report.redis_unavailable
                if report.effective_cps is not None:
                    self.effective_cps.append(report.effective_cps)

    def attach(self) -> ReportObserver:
        observability.subscribe(self)
        return self

    def detach(self) -> None:
        observability.unsubscribe(self)


@dataclass
class Summary:
    enqueued: int
    filtered_out: int
    dropped_by_reason: dict
    dialed: int
    dialed_twice: int
    deferred: int
    duplicates_suppressed: int
    retried_items: int
    in_dlq: int
    worker_calls: int
    max_cps: float
    achieved_cps: float
    peak_rolling_second: int
    lost: int
    waiting: int  # still in the queue (delayed, visible or in flight) when the run ended
    drained: bool
    seconds: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class LocalRun:
    def __init__(
        self,
        settings: Settings,
        *,
        postgres: PostgresServer,
        dbname: str,
        redis: RedisServer,
        max_cps: float | None = None,
        visibility_timeout_seconds: int | None = None,
        batching_window_seconds: float | None = None,
        parallel: int | None = None,
        cache_ttl_seconds: float | None = None,
        dialer_overrides: dict | None = None,
        call_events_overrides: dict | None = None,
    ) -> None:
        """`dialer_overrides`: DialerEnv fields to set instead of the settings' values, e.g. the
        documented switch-offs of the compliance gates for tests about something else.
        `call_events_overrides`: CallEventsEnv fields likewise (a shorter cool-down, say)."""
        self.settings = settings
        self.postgres = postgres
        self.dbname = dbname
        self.redis = redis
        self.max_cps = max_cps or settings.max_cps
        self.visibility_timeout = visibility_timeout_seconds or settings.visibility_timeout_seconds
        self.batching_window = batching_window_seconds
        self.parallel = parallel or settings.pipe.local_parallel_executions
        self.cache_ttl = settings.campaign_cache_ttl_seconds if cache_ttl_seconds is None else cache_ttl_seconds
        self.dialer_overrides = dict(dialer_overrides or {})
        self.call_events_overrides = dict(call_events_overrides or {})
        # Pipe pollers, SQS server, worker stand-in and handlers share one interpreter here; a
        # shorter GIL switch interval keeps the stand-in's arrival times close to when the dialer
        # sent each call (in AWS they are separate machines).
        sys.setswitchinterval(0.0005)
        self.key_prefix = f"local-{uuid.uuid4().hex[:8]}"
        self.worker = WorkerStandIn().start()
        self.sqs = LocalSqsServer().start()
        self.queues = self.sqs.create_queues(
            f"dial-tasks-{self.key_prefix}",
            max_receive_count=settings.queue.max_receive_count,
            visibility_timeout_seconds=self.visibility_timeout,
        )
        # The worker's call events: their own queue, read by the call-events handler as an SQS
        # event source mapping would, from the start of the run to its close.
        self.call_event_queues = self.sqs.create_queues(
            f"call-events-{self.key_prefix}",
            max_receive_count=settings.queue.max_receive_count,
            visibility_timeout_seconds=self.visibility_timeout,
        )
        self.worker.report_to(self.call_event_queues.client, self.call_event_queues.queue_url)
        self.observer = ReportObserver().attach()
        self.enqueued = 0
        self._configure_handlers()
        self.call_events_mapping = LocalEventSourceMapping(
            queues=self.call_event_queues,
            handler=self.call_events_handler,
            function_name="call-events",
            timeout_seconds=settings.call_events.timeout_seconds,
            visibility_timeout_seconds=self.visibility_timeout,
        ).start()

    @property
    def live_rate_key(self) -> str:
        """The live MAX_CPS (`dialctl rate set`); missing, the dialer paces at max_cps."""
        return redis_key(self.key_prefix)

    @property
    def dsn(self) -> str:
        return self.postgres.dsn(self.dbname)

    def dialer_fields(self) -> dict:
        """The dialer's contract fields: the settings' values, the local services, the overrides."""
        return {
            "host": self.redis.host,
            "port": self.redis.port,
            "tls": False,
            "key_prefix": self.key_prefix,
            "worker_url": self.worker.url,
            "max_cps": self.max_cps,
            "reserved_concurrency": self.parallel,
            "claim_ttl_seconds": self.settings.claim_ttl_seconds,
            "redis_quarantine_seconds": self.settings.redis_quarantine_seconds,
            "calling_hours": self.settings.calling_hours,
            "default_time_zone": self.settings.default_time_zone,
            "task_max_age_hours": self.settings.task_max_age_hours,
            "recipient_daily_limit": self.settings.recipient_daily_limit,
            "max_concurrent_calls": self.settings.max_concurrent_calls,
            "max_call_seconds": self.settings.max_call_seconds,
            # Locally the hash key is the run's own; deployed it is a generated secret.
            "recipient_hash_key": f"local-{self.key_prefix}",
            "defer_queue_url": self.queues.queue_url,
            # Runtime control as deployed, through a Redis key instead of SSM (live_rate_key).
            "max_cps_parameter_name": REDIS_SCHEME + LOCAL_KEY_NAME,
            **self.dialer_overrides,
        }

    def call_events_fields(self) -> dict:
        """The call-events handler's contract fields: settings, local Redis, overrides."""
        return {
            "host": self.redis.host,
            "port": self.redis.port,
            "tls": False,
            "key_prefix": self.key_prefix,
            "answer_rate_window": self.settings.answer_rate_window,
            "answer_rate_min_samples": self.settings.answer_rate_min_samples,
            "answer_rate_cool_down_seconds": self.settings.answer_rate_cool_down_seconds,
            "max_call_seconds": self.settings.max_call_seconds,
            **self.call_events_overrides,
        }

    def _configure_handlers(self) -> None:
        """The environment the stack would give the functions, pointed at the local services and
        written through the same contracts."""
        database = dict(
            host=self.postgres.host,
            port=self.postgres.port,
            name=self.dbname,
            user=self.postgres.user,
            password=self.postgres.password or None,
        )
        environment = {
            **ObservabilityEnv.variables(
                service_name="local-pipeline", metrics_namespace=self.settings.metrics_namespace, trace_disabled=True
            ),
            **EnrichmentEnv.variables(**database, campaign_cache_ttl_seconds=self.cache_ttl),
            **DialerEnv.variables(**self.dialer_fields()),
            **CallEventsEnv.variables(**self.call_events_fields()),
            "AWS_ENDPOINT_URL_SQS": self.sqs.endpoint,
        }
        unset = (EnrichmentEnv.env_name("secret_arn"), DialerEnv.env_name("auth_secret_arn"))
        # Put back on close: a later run, or an AWS client in the same process, must not find
        # this run's endpoints (its SQS server is gone by then).
        self._saved_environ = {name: os.environ.get(name) for name in (*environment, *unset)}
        os.environ.update(environment)
        for name in unset:
            os.environ.pop(name, None)
        # A new run is a new set of containers: the handlers rebuild their clients from the
        # environment above on their next call.
        enrichment.reset()
        dialer.reset()
        call_events.reset()
        self.enrichment_handler = enrichment.handler
        self.dialer_handler = dialer.handler
        self.call_events_handler = call_events.handler

    def enqueue(self, bodies: Iterable) -> int:
        """Sends each body as the scheduler does, with MessageGroupId = its campaignId."""
        entries = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
        for start in range(0, len(entries), 10):
            chunk = entries[start : start + 10]
            self.queues.client.send_message_batch(
                QueueUrl=self.queues.queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": body, "MessageGroupId": self.group_of(body)}
                    for i, body in enumerate(chunk)
                ],
            )
        self.enqueued += len(entries)
        return len(entries)

    @staticmethod
    def group_of(body: str) -> str:
        """A body without a campaignId SQS would take as a group (not JSON, none, not 1 to 128
        printable characters) goes to the group "unknown": the pipe still sees it, and drops it."""
        try:
            campaign_id = json.loads(body).get("campaignId")
        except (ValueError, AttributeError):
            return "unknown"
        usable = (
            isinstance(campaign_id, str) and 0 < len(campaign_id) <= 128 and all("!" <= c <= "~" for c in campaign_id)
        )
        return campaign_id if usable else "unknown"

    def pipe(self) -> LocalPipe:
        return LocalPipe(
            settings=self.settings,
            queues=self.queues,
            enrichment=self.enrichment_handler,
            target=self.dialer_handler,
            visibility_timeout_seconds=self.visibility_timeout,
            batching_window_seconds=self.batching_window,
        )

    def run(self, *, timeout: float, progress=None, during=None) -> Summary:
        """Runs the pipe until the queue drains (or `timeout`); `during(run)` runs alongside."""
        started = time.monotonic()
        pipe = self.pipe().start(self.parallel)
        side = threading.Thread(target=during, args=(self,), daemon=True) if during else None
        if side:
            side.start()
        try:
            drained = pipe.run_until_drained(
                timeout=timeout, progress=progress, producing=lambda: side is not None and side.is_alive()
            )
        finally:
            pipe.stop()
            if side:
                side.join(timeout=5)
        return self.summary(pipe, drained, time.monotonic() - started)

    def summary(self, pipe: LocalPipe, drained: bool, seconds: float) -> Summary:
        calls = list(self.worker.calls)
        accepted = Counter(c.body.get("callId") for c in calls if 200 <= c.status < 300)
        times = sorted(c.at_monotonic for c in calls)
        accepted_times = sorted(c.at_monotonic for c in calls if 200 <= c.status < 300)
        in_dlq = len(self.queues.dlq_bodies())
        counts = self.observer.dial_counts
        dropped = dict(self.observer.drops)
        # Counted by the queue's own store, not from what the pipe attempted (a delete with a stale
        # receipt handle does nothing, in SQS too): every message that arrived (the producer's and
        # the dialer's deferred copies) was deleted, moved to the DLQ, or is still stored.
        queue = self.sqs.queues.queue_named(self.queues.queue_url.rsplit("/", 1)[1])
        ledger = queue.ledger
        waiting = len(queue.messages)
        lost = ledger["arrived"] - ledger["deleted"] - ledger["dead_lettered"] - waiting
        achieved = (
            (len(accepted_times) - 1) / (accepted_times[-1] - accepted_times[0]) if len(accepted_times) > 1 else 0.0
        )
        return Summary(
            enqueued=self.enqueued,
            filtered_out=pipe.stats.filtered,
            dropped_by_reason=dropped,
            dialed=len(accepted),
            dialed_twice=sum(1 for n in accepted.values() if n > 1),
            deferred=counts["Deferred"],
            duplicates_suppressed=counts["DuplicateSuppressed"],
            retried_items=pipe.stats.counts["items_retried"],
            in_dlq=in_dlq,
            worker_calls=len(calls),
            max_cps=self.max_cps,
            achieved_cps=round(achieved, 2),
            peak_rolling_second=rolling_window_max(times),
            lost=lost,
            waiting=waiting,
            drained=drained,
            seconds=round(seconds, 2),
            extra={
                "pipe_executions": pipe.stats.executions,
                "min_effective_cps": min(self.observer.effective_cps, default=None),
                "worker_overloaded": counts["WorkerOverloaded"],
                "redis_unavailable_batches": counts["RedisUnavailableBatches"],
                # The closed loop, counted at the worker stand-in: live calls at once ("*": fleet).
                "peak_live_calls": dict(self.worker.peak_live),
                "call_events_sent": self.worker.events_sent,
                "call_events_mapping": dict(self.call_events_mapping.counts),
                "deferrals_by_reason": dict(self.observer.deferrals),
                **dict(pipe.stats.counts),
            },
        )

    def close(self) -> None:
        self.observer.detach()
        self.call_events_mapping.stop()
        self.worker.stop()
        self.sqs.stop()
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
