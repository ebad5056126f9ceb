"""A whole local pipeline: real PostgreSQL and Redis, a local SQS, the worker stand-in, the
functions' own cores (local_pipeline/functions.py), and a pipe with the stacks' settings. Used by
the demo, the end-to-end tests and the load benchmark; every number in its summary is observed,
not assumed. Each run keeps all of its state to itself: several can run in one process."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from call_events.env import CallEventsEnv
from call_ledger.env import LedgerEnv
from dialer_worker.env import GATES_OFF, DialerEnv
from dialer_worker.live_rate import LOCAL_KEY_NAME, REDIS_SCHEME, redis_key
from enrich_dial_task.env import EnrichmentEnv
from local_pipeline.event_source import LocalEventSourceMapping
from local_pipeline.functions import LocalFunctions, checked
from local_pipeline.pipe import LocalPipe
from local_pipeline.services import PostgresServer, RedisServer
from local_pipeline.sqs_local import LocalSqsServer
from local_pipeline.worker_standin import WorkerStandIn, rolling_window_max
from stacks.function_env import call_events_fields, dialer_fields, enrichment_fields, ledger_fields, redis_fields
from stacks.settings import Settings


def pacing_only_env(**fields) -> DialerEnv:
    """A dialer environment for measuring pacing alone (the benchmarks): every other gate off."""
    base = dict(
        reserved_concurrency=1,
        claim_ttl_seconds=600,
        restore_hold_seconds=20,
        redis_quarantine_seconds=15,
        default_time_zone="America/New_York",
        max_call_seconds=900,
    )
    return DialerEnv(**{**base, **GATES_OFF, **fields})


def favour_the_stand_in() -> None:
    """For entry points that measure rates (the demo, the benchmarks, the e2e tests): the pipe
    pollers, the SQS server and the functions share this interpreter (the worker stand-in has its
    own process), and a shorter GIL switch interval keeps each POST close to its slot (in AWS the
    dialer has its container to itself). Process-wide, so never done by a LocalRun itself."""
    sys.setswitchinterval(0.0005)


def dialable_number(n: int, area_code: str = "415") -> str:
    """The n-th of a million valid US numbers (the exchange starts with 2-9), as phonenumbers wants."""
    return f"+1{area_code}{2 + n // 10**6 % 8}{n % 10**6:06d}"


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
    # Accepted calls at the worker per campaignId: what each campaign's caps had to pace.
    dialed_by_campaign: dict = field(default_factory=dict)

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
        ledger_database: tuple[PostgresServer, str] | None = None,
        ledger_visibility_timeout_seconds: int | None = None,
    ) -> None:
        """`dialer_overrides`: DialerEnv fields to set instead of the settings' values, e.g. the
        documented switch-offs of the compliance gates for tests about something else.
        `call_events_overrides`: CallEventsEnv fields likewise (a shorter cool-down, say).
        `ledger_database`: (server, database) the ledger writes to instead of the campaigns'
        (migrated by the caller; its campaigns table decides retries), e.g. one a test stops
        while dialing goes on. `ledger_visibility_timeout_seconds`: how soon a failed batch of
        records comes back (default: the run's visibility timeout); with the receive count, how
        long records wait for PostgreSQL before the DLQ."""
        self.settings = settings
        self.postgres = postgres
        self.dbname = dbname
        self.redis = redis
        self.ledger_postgres, self.ledger_dbname = ledger_database or (postgres, dbname)
        self.max_cps = max_cps or settings.max_cps
        self.visibility_timeout = visibility_timeout_seconds or settings.visibility_timeout_seconds
        self.ledger_visibility_timeout = ledger_visibility_timeout_seconds or self.visibility_timeout
        self.batching_window = batching_window_seconds
        self.parallel = parallel or settings.pipe.local_parallel_executions
        self.cache_ttl = settings.campaign_cache_ttl_seconds if cache_ttl_seconds is None else cache_ttl_seconds
        self.dialer_overrides = dict(dialer_overrides or {})
        self.call_events_overrides = dict(call_events_overrides or {})
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
        # The call ledger's records: every function sends them here, its writer reads them as the
        # stack's event source mapping does (settings' batch size and window).
        self.record_queues = self.sqs.create_queues(
            f"call-records-{self.key_prefix}",
            max_receive_count=settings.queue.max_receive_count,
            visibility_timeout_seconds=self.ledger_visibility_timeout,
        )
        self.enqueued = 0
        # One client for the dialer's deferrals, made here: boto3 makes clients unsafely across threads.
        deferrals = self.sqs.client()
        self.functions = LocalFunctions(
            enrichment=checked(EnrichmentEnv, self.enrichment_fields()),
            dialer=checked(DialerEnv, self.dialer_fields()),
            call_events=checked(CallEventsEnv, self.call_events_fields()),
            ledger=checked(LedgerEnv, self.ledger_fields()),
            sqs=lambda: deferrals,
            namespace=settings.metrics_namespace,
        )
        self.call_events_mapping = LocalEventSourceMapping(
            queues=self.call_event_queues,
            handler=self.functions.record_call_events,
            function_name="call-events",
            timeout_seconds=settings.call_events.timeout_seconds,
            visibility_timeout_seconds=self.visibility_timeout,
        ).start()
        self.ledger_mapping = LocalEventSourceMapping(
            queues=self.record_queues,
            handler=self.functions.write_ledger,
            function_name="call-ledger",
            timeout_seconds=settings.ledger.timeout_seconds,
            visibility_timeout_seconds=self.ledger_visibility_timeout,
            batch_size=settings.call_records_batch_size,
            batching_window_s=settings.call_records_batching_window_seconds,
        ).start()

    @property
    def live_rate_key(self) -> str:
        """The live MAX_CPS (`dialctl rate set`); missing, the dialer paces at max_cps."""
        return redis_key(self.key_prefix)

    @property
    def dsn(self) -> str:
        return self.postgres.dsn(self.dbname)

    def redis_fields(self) -> dict:
        return redis_fields(self.redis.host, self.redis.port, tls=False, key_prefix=self.key_prefix)

    def database_fields(self, server: PostgresServer | None = None, dbname: str | None = None) -> dict:
        server = server or self.postgres
        return dict(
            host=server.host,
            port=server.port,
            name=dbname or self.dbname,
            user=server.user,
            password=server.password or None,
        )

    def enrichment_fields(self) -> dict:
        """The enrichment's contract fields: the settings' values and the local database."""
        return enrichment_fields(
            self.settings,
            database=self.database_fields(),
            campaign_cache_ttl_seconds=self.cache_ttl,
            call_records_queue_url=self.record_queues.queue_url,
        )

    @property
    def recipient_hash_key(self) -> str:
        """Locally the run's own; deployed, a generated secret the dialer and the ledger read."""
        return f"local-{self.key_prefix}"

    def ledger_fields(self) -> dict:
        """The ledger writer's contract fields: the local database and Redis, the dial-tasks queue."""
        return ledger_fields(
            self.settings,
            database=self.database_fields(self.ledger_postgres, self.ledger_dbname),
            redis=self.redis_fields(),
            dial_tasks_queue_url=self.queues.queue_url,
            recipient_hash_key=self.recipient_hash_key,
        )

    def dialer_fields(self) -> dict:
        """The dialer's contract fields: the settings' values, the local services, the overrides."""
        fields = dialer_fields(
            self.settings,
            redis=self.redis_fields(),
            worker_url=self.worker.url,
            defer_queue_url=self.queues.queue_url,
            max_cps=self.max_cps,
            # Runtime control as deployed, through a Redis key instead of SSM (live_rate_key).
            max_cps_parameter_name=REDIS_SCHEME + LOCAL_KEY_NAME,
            reserved_concurrency=self.parallel,
            # Locally the hash key is the run's own; deployed it is a generated secret.
            recipient_hash_key=self.recipient_hash_key,
            call_records_queue_url=self.record_queues.queue_url,
        )
        return {**fields, **self.dialer_overrides}

    def call_events_fields(self) -> dict:
        """The call-events function's contract fields: settings, local Redis, overrides."""
        fields = call_events_fields(
            self.settings, redis=self.redis_fields(), call_records_queue_url=self.record_queues.queue_url
        )
        return {**fields, **self.call_events_overrides}

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
            enrichment=self.functions.enrich,
            target=self.functions.dial,
            visibility_timeout_seconds=self.visibility_timeout,
            batching_window_seconds=self.batching_window,
        )

    def run(self, *, timeout: float, progress=None, during=None, until_ledger_settles: bool = False) -> Summary:
        """Runs the pipe until the queue drains (or `timeout`); `during(run)` runs alongside.
        `until_ledger_settles`: and until every call has ended and its records are written, so
        the retries they call for are on the queue (and dialed) before it counts as drained."""
        started = time.monotonic()
        pipe = self.pipe().start(self.parallel)
        side = threading.Thread(target=during, args=(self,), daemon=True) if during else None
        if side:
            side.start()
        try:
            drained = pipe.run_until_drained(
                timeout=timeout,
                progress=progress,
                producing=lambda: (
                    (side is not None and side.is_alive()) or (until_ledger_settles and not self.ledger_settled())
                ),
            )
        finally:
            pipe.stop()
            if side:
                side.join(timeout=5)
        return self.summary(pipe, drained, time.monotonic() - started)

    def ledger_settled(self) -> bool:
        """No live call at the worker, no call event or record waiting: the ledger has it all."""
        if self.worker.live():
            return False
        return not any(sum(q.depth().values()) for q in (self.call_event_queues, self.record_queues))

    def ledger_rows(self) -> dict | None:
        """The ledger's rows by disposition (`orphan`: an outcome without its attempt), or None
        when PostgreSQL does not answer."""
        import psycopg

        try:
            with psycopg.connect(self.ledger_postgres.dsn(self.ledger_dbname), connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT COALESCE(disposition, CASE WHEN outcome IS NULL THEN 'pending' ELSE 'orphan' END),"
                    " count(*) FROM call_attempts GROUP BY 1"
                ).fetchall()
        except psycopg.OperationalError:
            return None
        return {disposition: count for disposition, count in rows}

    def summary(self, pipe: LocalPipe, drained: bool, seconds: float) -> Summary:
        calls = list(self.worker.calls)
        accepted = Counter(c.body.get("callId") for c in calls if 200 <= c.status < 300)
        times = sorted(c.at_monotonic for c in calls)
        accepted_times = sorted(c.at_monotonic for c in calls if 200 <= c.status < 300)
        in_dlq = len(self.queues.dlq_bodies())
        tally = self.functions.tally
        counts = tally.dial_counts
        dropped = dict(tally.drops)
        # Counted by the queue's own store, not from what the pipe attempted (a delete with a stale
        # receipt handle does nothing, in SQS too): every message that arrived (the producer's and
        # the dialer's deferred copies) was deleted, moved to the DLQ, or is still stored.
        queue = self.sqs.queues.stored(self.queues.queue_url.rsplit("/", 1)[1])
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
            dialed_by_campaign=dict(
                sorted(Counter(str(c.body.get("campaignId")) for c in calls if 200 <= c.status < 300).items())
            ),
            extra={
                "pipe_executions": pipe.stats.executions,
                "min_effective_cps": min(tally.effective_cps, default=None),
                "worker_overloaded": counts["WorkerOverloaded"],
                "redis_unavailable_batches": counts["RedisUnavailableBatches"],
                # The closed loop, counted at the worker stand-in: live calls at once ("*": fleet).
                "peak_live_calls": dict(self.worker.peak_live),
                "call_events_sent": self.worker.events_sent,
                "call_events_mapping": dict(self.call_events_mapping.counts),
                "deferrals_by_reason": dict(tally.deferrals),
                # The call ledger: its rows (dialed, dropped, pending: a retry planned, not yet
                # dialed) against the calls and drops above, and what its writer did.
                "ledger_rows": self.ledger_rows(),
                "ledger": dict(tally.ledger),
                "ledger_mapping": dict(self.ledger_mapping.counts),
                **dict(pipe.stats.counts),
            },
        )

    def close(self) -> None:
        self.ledger_mapping.stop()
        self.call_events_mapping.stop()
        self.functions.close()
        self.worker.stop()
        self.sqs.stop()
