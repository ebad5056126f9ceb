"""One batch: reserve slots (or defer), dial each task at its slot, settle claims, report failures.

No Lambda types: the handler passes a function that says how much time is left.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from dialer_worker import ports
from dialer_worker.admission import LATE_TOLERANCE_S, Admission, AdmissionRequest, Decision, LocalPacer
from dialer_worker.calling_window import parse_hours, zone
from dialer_worker.compliance import Admit, Compliance, Wait
from dialer_worker.deferral import MAX_DELAY_SECONDS
from dialer_worker.env import DialerEnv
from dialer_worker.items import dial_command
from dialer_worker.live_rate import LiveRate
from dialer_worker.recipients import recipient_hash
from dialer_worker.worker_client import Outcome
from shared.dial_task import EnrichedTask
from shared.drops import DeferReason, Drop, DropReason
from shared.observability import Metric

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 3.0
# Kept free at the end of the invocation: the last call's HTTP round trip, settling claims and
# deferring. A task whose slot falls later is deferred, not dialed.
SAFETY_MARGIN_MS = int((CONNECT_TIMEOUT_S + READ_TIMEOUT_S) * 1000) + 1000
# After Redis fails, the next attempt to use it waits this long (degraded pacing meanwhile).
REDIS_RETRY_AFTER_S = 2.0
# The way back: local pacing reserves slots at most this far ahead, and every container retries
# Redis within REDIS_RETRY_AFTER_S of its last failure, so all local slots have passed within
# REDIS_RETRY_AFTER_S + LOCAL_HORIZON_S of Redis answering again (plus a failing call's own
# timeouts). The first container to get Redis back starts a fleet-wide hold that long.
LOCAL_HORIZON_S = 2.0
RECOVERY_HOLD_S = REDIS_RETRY_AFTER_S + LOCAL_HORIZON_S + 2.0
# The kill switch (live MAX_CPS 0): every task goes back to the queue this long, without a claim.
STOPPED_DEFER_MS = 5000
# A task whose campaign (or the fleet) has every live call it may have: back in the queue this
# long (the design allows at most 30 s). Short, because a call event frees a slot at any moment;
# a full campaign's backlog then costs one re-send per task every 3 s.
LIVE_CALLS_DEFER_MS = 3000
# A paused campaign's task: back in the queue this long, without a claim, so it is dialed within
# about this long plus the enrichment's campaign cache (5 s) once the campaign is active again.
# The price of a short wait: a paused backlog of N tasks costs N / 10 re-sends (and pipe
# executions) per second while the pause lasts; a long pause is cheaper as `inactive` plus a
# re-enqueue by the scheduler.
PAUSED_DEFER_MS = 10_000


@dataclass
class BatchReport:
    """What one batch came to; the handler logs and counts it, the local runner reads it."""

    failures: list[str] = field(default_factory=list)  # messageIds to retry
    counts: Counter = field(default_factory=Counter)  # DialsSent, DialsFailed, Deferred, ...
    drops: list[Drop] = field(default_factory=list)
    # Why each re-queued task had to wait, by DeferReason.
    deferrals: Counter = field(default_factory=Counter)
    # Tasks that had to wait but could not be re-queued (messageId, why): retried as failures.
    defer_failures: list[tuple[str, str]] = field(default_factory=list)
    pacing_delay_ms: list[float] = field(default_factory=list)
    effective_cps: float | None = None
    # Live calls after admission (None: Redis not asked): the fleet's and per campaign.
    fleet_live: int | None = None
    campaign_live: dict[str, int] = field(default_factory=dict)
    redis_unavailable: bool = False
    redis_error: str | None = None
    # Redis's claims epoch changed under this container: Redis lost its claims.
    claims_reset: bool = False


class RedisHealth:
    """Remembers a Redis failure for a short while, so a dead Redis costs one timeout, not one per batch."""

    def __init__(self, clock=time.monotonic, *, quarantine_s: float, recovery_hold_s: float = RECOVERY_HOLD_S) -> None:
        """quarantine_s: slots reserved in Redis before it failed may still be dialed by their owners
        for up to one dialer timeout; local pacing starts after that, so the two never add up, and
        meanwhile tasks are deferred (no receive is used up)."""
        self._clock = clock
        self._quarantine_s = quarantine_s
        self.recovery_hold_s = recovery_hold_s
        self._down_until = 0.0
        self._down_since: float | None = None
        self.ever_failed = False

    def usable(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self) -> None:
        self.ever_failed = True
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        self._down_until = now + REDIS_RETRY_AFTER_S

    def ok(self) -> None:
        self._down_until = 0.0
        self._down_since = None

    def recovering(self) -> bool:
        """Redis failed and has not answered since: the next call that succeeds is a recovery."""
        return self._down_since is not None

    def quarantine_left_s(self) -> float:
        """How long local pacing must still wait for slots reserved in Redis to pass."""
        if self._down_since is None:
            return 0.0
        return max(0.0, self._down_since + self._quarantine_s - self._clock())


class Dispatcher:
    def __init__(
        self,
        *,
        config: DialerEnv,
        pacer: ports.Pacer,
        worker: ports.Worker,
        deferrer: ports.Deferrer,
        executor: Executor,
        health: RedisHealth | None = None,
        local_pacer: LocalPacer | None = None,
        live_rate: LiveRate | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recipient_key: bytes | None = None,
    ) -> None:
        """`recipient_key`: the secret the recipient limit hashes numbers with (None: no limit)."""
        self.config = config
        self.pacer = pacer
        self.worker = worker
        self.deferrer = deferrer
        self.executor = executor
        self.health = health or RedisHealth(clock, quarantine_s=config.redis_quarantine_seconds)
        self.local_pacer = local_pacer or LocalPacer(clock)
        self.live_rate = live_rate
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._recipient_key = recipient_key
        self._epoch: str | None = None
        default_zone = zone(config.default_time_zone)
        self.compliance = Compliance(
            legal_hours=parse_hours(config.calling_hours),
            default_zone=default_zone,
            max_age=timedelta(hours=config.task_max_age_hours) if config.task_max_age_hours else None,
        )

    def run(self, raw_items: list, remaining_ms: Callable[[], int]) -> BatchReport:
        report = BatchReport()
        items: list[EnrichedTask] = []
        seen: set[str] = set()
        for raw in raw_items if isinstance(raw_items, list) else []:
            parsed = EnrichedTask.from_item(raw)
            if isinstance(parsed, DropReason):
                message_id = raw.get("messageId") if isinstance(raw, dict) else None
                report.drops.append(Drop(parsed, message_id))
                report.counts[Metric.DIALS_DROPPED] += 1
            elif parsed.message_id in seen:
                # Pipes never repeats a messageId in one batch; if it did, one failure entry covers both.
                report.drops.append(
                    Drop(DropReason.REPEATED_MESSAGE_ID, parsed.message_id, parsed.campaign_id, parsed.phone_number)
                )
                report.counts[Metric.DIALS_DROPPED] += 1
            else:
                seen.add(parsed.message_id)
                items.append(parsed)

        to_defer: list[tuple[EnrichedTask, int, DeferReason]] = []
        # Compliance first: nothing outside its window or expired takes a claim or a slot.
        now = self._wall_clock()
        closes: dict[str, datetime | None] = {}
        admitted: list[EnrichedTask] = []
        for item in items:
            verdict = self.compliance.screen(item, now)
            if isinstance(verdict, Admit) and item.paused:
                # Kept, not dialed: no claim, no slot; looked at again in PAUSED_DEFER_MS.
                to_defer.append((item, PAUSED_DEFER_MS, DeferReason.PAUSED))
            elif isinstance(verdict, Admit):
                closes[item.message_id] = verdict.until
                admitted.append(item)
            elif isinstance(verdict, Wait):
                to_defer.append((item, self._wait_ms(now, verdict.opens_at), DeferReason.OUTSIDE_WINDOW))
            else:
                report.drops.append(Drop(verdict, item.message_id, item.campaign_id, item.phone_number))
                report.counts[Metric.DIALS_DROPPED] += 1
        items = admitted
        if not items:
            self._defer(to_defer, report)
            return report

        # The ceiling, or min(live, ceiling) under runtime control (one cached read per 10 s).
        max_cps = self.live_rate.current() if self.live_rate else self.config.max_cps
        if max_cps <= 0:
            # The kill switch: nothing is reserved or claimed, every task waits in the queue.
            report.effective_cps = 0.0
            self._defer(to_defer + [(item, STOPPED_DEFER_MS, DeferReason.STOPPED) for item in items], report)
            return report
        max_wait_ms = remaining_ms() - SAFETY_MARGIN_MS
        admissions, use_redis = self._reserve(items, max_wait_ms, remaining_ms(), report, max_cps)
        started = self._clock()

        to_dial: list[tuple[EnrichedTask, float]] = []
        after_window: list[EnrichedTask] = []
        for item, admission in zip(items, admissions, strict=True):
            if admission.decision == Decision.DUPLICATE:
                report.counts[Metric.DUPLICATE_SUPPRESSED] += 1
            elif admission.decision == Decision.RECIPIENT_LIMIT:
                report.drops.append(
                    Drop(DropReason.RECIPIENT_LIMIT, item.message_id, item.campaign_id, item.phone_number)
                )
                report.counts[Metric.DIALS_DROPPED] += 1
            elif admission.decision == Decision.LIVE_CALLS:
                to_defer.append((item, LIVE_CALLS_DEFER_MS, DeferReason.LIVE_CALLS))
            elif admission.decision in (Decision.DEFER, Decision.IN_FLIGHT):
                in_flight = admission.decision == Decision.IN_FLIGHT
                reason = (
                    DeferReason.IN_FLIGHT if in_flight else (DeferReason.RATE if use_redis else DeferReason.REDIS_DOWN)
                )
                to_defer.append((item, max(admission.wait_us // 1000, 1), reason))
            elif admission.decision == Decision.DIAL:
                # The window is judged at the instant the call would leave, not when the batch came.
                slot = now + timedelta(microseconds=admission.wait_us)
                until = closes[item.message_id]
                if until is not None and slot >= until:
                    after_window.append(item)
                    to_defer.append(
                        (
                            item,
                            self._wait_ms(now, self.compliance.next_opening(item, until)),
                            DeferReason.OUTSIDE_WINDOW,
                        )
                    )
                else:
                    to_dial.append((item, started + admission.wait_us / 1_000_000))

        outcomes, late = self._dial_at_slots(to_dial, remaining_ms, report)
        to_defer += [(item, 1000, DeferReason.LATE) for item in late]
        self._settle(outcomes, [*late, *after_window], use_redis, report, max_cps)
        self._defer(to_defer, report)
        return report

    def _recipient(self, item: EnrichedTask) -> str | None:
        return recipient_hash(self._recipient_key, item.phone_number) if self._recipient_key else None

    @staticmethod
    def _wait_ms(now: datetime, until: datetime | None) -> int:
        """Until `until`, in one deferral hop at most (SQS delays stop at 900 s)."""
        if until is None:
            return MAX_DELAY_SECONDS * 1000
        return max(1000, min(MAX_DELAY_SECONDS * 1000, int((until - now).total_seconds() * 1000) + 1))

    def _check_epoch(self, epoch: str | None, report: BatchReport) -> None:
        """Redis came back without the claims it held (a failover that lost writes): calls in
        flight may be dialed again, stopped only by the worker's Idempotency-Key. Say so once."""
        if epoch is None:
            return
        if self._epoch is not None and epoch != self._epoch:
            report.claims_reset = True
        self._epoch = epoch

    def _reserve(self, items, max_wait_ms, remaining, report, max_cps):
        if self.health.usable():
            try:
                reservation = self.pacer.reserve(
                    [
                        AdmissionRequest(
                            call_id=i.call_id,
                            campaign_id=i.campaign_id,
                            campaign_max_cps=i.config.max_cps,
                            recipient=self._recipient(i),
                            campaign_max_live=i.config.max_concurrent_calls,
                            min_answer_rate=i.config.min_answer_rate,
                        )
                        for i in items
                    ],
                    max_cps=max_cps,
                    max_wait_ms=max_wait_ms,
                    lease_ms=remaining + 5000,
                    hold_ms=int(self.health.recovery_hold_s * 1000) if self.health.recovering() else 0,
                )
                self.health.ok()
                report.effective_cps = reservation.effective_cps
                self._check_epoch(reservation.epoch, report)
                report.fleet_live = reservation.fleet_live
                report.campaign_live = dict(reservation.campaign_live)
                return reservation.admissions, True
            except (RedisError, OSError) as exc:
                self.health.failed()
                report.redis_error = f"{type(exc).__name__}: {exc}"
        report.redis_unavailable = True
        quarantine_ms = int(self.health.quarantine_left_s() * 1000)
        if quarantine_ms > 0:
            report.effective_cps = 0.0
            return [Admission(Decision.DEFER, quarantine_ms * 1000) for _ in items], False
        horizon_ms = min(max_wait_ms, int(LOCAL_HORIZON_S * 1000))
        reservation = self.local_pacer.reserve(
            len(items), cps=max_cps / self.config.reserved_concurrency, max_wait_ms=horizon_ms
        )
        report.effective_cps = reservation.effective_cps
        return reservation.admissions, False

    def _dial_at_slots(self, to_dial, remaining_ms, report):
        futures: list[tuple[EnrichedTask, Future]] = []
        for item, at in sorted(to_dial, key=lambda pair: pair[1]):
            delay = at - self._clock()
            if delay > 0:
                self._sleep(delay)
            report.pacing_delay_ms.append(max(0.0, delay) * 1000)
            read_timeout = max(0.2, min(READ_TIMEOUT_S, (remaining_ms() - 1000) / 1000 - CONNECT_TIMEOUT_S))
            futures.append((item, self.executor.submit(self._dial_if_on_time, item, at, read_timeout)))
        outcomes, late = [], []
        for item, future in futures:
            result = future.result()
            if result is None:
                late.append(item)
            else:
                outcomes.append((item, result))
        return outcomes, late

    def _dial_if_on_time(self, item: EnrichedTask, at: float, read_timeout: float):
        # Checked on the thread that sends, right before sending: a call leaving later than the
        # slack allows could crowd a rolling second, so it goes back to the queue instead.
        if self._clock() - at > LATE_TOLERANCE_S:
            return None
        return self.worker.dial(dial_command(item), connect_timeout=CONNECT_TIMEOUT_S, read_timeout=read_timeout)

    def _settle(self, outcomes, not_sent, use_redis, report, max_cps):
        accepted, released = [], [i.call_id for i in not_sent]
        # Admitted but surely not placed: no longer live (a 4xx keeps its claim, not its slot).
        ended = {i.call_id: i.campaign_id for i in not_sent}
        overloaded = False
        for item, (outcome, status) in outcomes:
            if outcome.delivered:
                accepted.append(item.call_id)
                report.counts[Metric.DIALS_SENT] += 1
            elif outcome is Outcome.REJECTED:
                # The worker will never take it: kept as settled so no redelivery dials it.
                accepted.append(item.call_id)
                ended[item.call_id] = item.campaign_id
                report.counts[Metric.DIALS_DROPPED] += 1
                report.drops.append(
                    Drop(DropReason.WORKER_REJECTED, item.message_id, item.campaign_id, item.phone_number, str(status))
                )
            else:
                report.failures.append(item.message_id)
                report.counts[Metric.DIALS_FAILED] += 1
                if outcome.surely_not_taken:
                    released.append(item.call_id)
                    ended[item.call_id] = item.campaign_id
                if outcome is Outcome.OVERLOADED:
                    overloaded = True
                    report.counts[Metric.WORKER_OVERLOADED] += 1
        if not use_redis:
            return
        try:
            if overloaded:
                self.pacer.slow_down(max_cps=max_cps)
            successes = report.counts[Metric.DIALS_SENT]
            raise_rate = successes if (report.effective_cps or 0) < max_cps else 0
            recipients = {i.call_id: self._recipient(i) for i in not_sent} | {
                item.call_id: self._recipient(item) for item, _ in outcomes
            }
            self.pacer.finish(
                accepted=accepted,
                released=released,
                successes=raise_rate,
                max_cps=max_cps,
                recipients={c: r for c, r in recipients.items() if r is not None},
                ended=ended,
            )
        except (RedisError, OSError) as exc:
            # Claims stay "dialing" until their lease ends; a redelivery then re-sends with the
            # same Idempotency-Key and the worker answers 409. Nothing is dialed twice.
            self.health.failed()
            report.redis_unavailable = True
            report.redis_error = f"{type(exc).__name__}: {exc}"

    def _defer(self, to_defer, report):
        if not to_defer:
            return
        failed = self.deferrer.defer([(item, wait_ms) for item, wait_ms, _ in to_defer])
        for item, _, reason in to_defer:
            if item.message_id in failed:
                report.failures.append(item.message_id)
                report.defer_failures.append((item.message_id, failed[item.message_id]))
                report.counts[Metric.DEFER_FAILED] += 1
            else:
                report.counts[Metric.DEFERRED] += 1
                report.deferrals[reason] += 1
