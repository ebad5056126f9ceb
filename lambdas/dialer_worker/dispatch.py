"""One batch, in named steps: screen (parse, compliance), reserve (Redis, else local slots), plan
(what each admission means), dial (each task at its slot, the answers read after the last), settle (claims, the shared rate) and
defer (back on the queue with a delay).

No Lambda types: the handler passes a function that says how much time is left.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer_worker import ports
from dialer_worker.admission import (
    Admission,
    AdmissionRequest,
    Decision,
    LocalPacer,
    PacerUnavailable,
    Reservation,
    RestoreState,
    Settled,
)
from dialer_worker.calling_window import parse_hours, zone
from dialer_worker.compliance import Admit, Compliance, Wait
from dialer_worker.deferral import MAX_DELAY_SECONDS
from dialer_worker.env import DialerEnv
from dialer_worker.items import dial_command
from dialer_worker.live_rate import LiveRate
from dialer_worker.worker_client import Outcome, Reply
from shared.dial_task import EnrichedTask
from shared.drops import DeferReason, Drop, DropReason
from shared.observability import Metric
from shared.redis_keys import recipient_hash

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
# A task held while the ledger restores Redis: back in the queue this long at most (the hold's
# end, if sooner). A restore takes about a second; the hold's bound is restore_hold_seconds.
RESTORING_DEFER_MS = 2000


@dataclass(frozen=True)
class SentCall:
    """A call the worker took (2xx or 409), or one its claim says was (a duplicate: no times, no
    status): what the dialer's `dialed` record says of it."""

    task: EnrichedTask
    admitted_at: datetime | None = None  # its slot
    sent_at: datetime | None = None  # when the worker's answer was settled
    worker_status: int | None = None
    time_zones: tuple[str, ...] = ()  # the zones its calling window was judged in


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
    # The batch's campaigns with a maxConcurrentCalls: their live calls are worth a metric each.
    capped_campaigns: set[str] = field(default_factory=set)
    redis_unavailable: bool = False
    redis_error: str | None = None
    # This batch sent the restore request for Redis found empty (or could not: why).
    restore_requested: bool = False
    restore_error: str | None = None
    # Redis's claims epoch changed under this container: Redis lost its claims.
    claims_reset: bool = False
    # What the worker took, and the duplicates, for the ledger's `dialed` records.
    sent: list[SentCall] = field(default_factory=list)


class RedisHealth:
    """Remembers a Redis failure for a short while, so a dead Redis costs one timeout, not one per batch."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        quarantine_s: float,
        recovery_hold_s: float = RECOVERY_HOLD_S,
    ) -> None:
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


@dataclass
class _Batch:
    """One batch between the steps: the tasks compliance admitted, and what goes back on the queue."""

    now: datetime
    admitted: list[EnrichedTask] = field(default_factory=list)
    # Each admitted task's verdict (when its window closes, the zones it was judged in), by messageId.
    admits: dict[str, Admit] = field(default_factory=dict)
    deferred: list[tuple[EnrichedTask, int, DeferReason]] = field(default_factory=list)

    def defer(self, item: EnrichedTask, wait_ms: int, reason: DeferReason) -> None:
        self.deferred.append((item, wait_ms, reason))


@dataclass
class _Plan:
    """The admitted tasks to dial, each at its slot (monotonic clock); and those whose slot fell
    after their window closed (they hold a claim that settling releases)."""

    to_dial: list[tuple[EnrichedTask, float]] = field(default_factory=list)
    after_window: list[EnrichedTask] = field(default_factory=list)
    # Each call to dial's admission, by callId: its slot and lease end on Redis's clock.
    admissions: dict[str, Admission] = field(default_factory=dict)


@dataclass
class _Settlement:
    """What settling tells Redis (admission.Settled, built up), and whether the worker was overloaded."""

    accepted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    carried: dict[str, tuple[str, int]] = field(default_factory=dict)  # call_id -> (campaign_id, slot)
    ended: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, tuple[str, int]] = field(default_factory=dict)
    overloaded: bool = False


class Dispatcher:
    def __init__(
        self,
        *,
        config: DialerEnv,
        pacer: ports.Pacer,
        worker: ports.Worker,
        deferrer: ports.Deferrer,
        health: RedisHealth | None = None,
        local_pacer: LocalPacer | None = None,
        live_rate: LiveRate | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recipient_key: bytes | None = None,
        restore: ports.RestoreRequester | None = None,
    ) -> None:
        """`recipient_key`: the secret the recipient limit hashes numbers with (None: no limit);
        `restore`: where to ask for Redis's claims back when it is found empty (None: not asked;
        the pacer then starts no hold)."""
        self.config = config
        self.pacer = pacer
        self.worker = worker
        self.deferrer = deferrer
        self.health = health or RedisHealth(clock, quarantine_s=config.redis_quarantine_seconds)
        self.local_pacer = local_pacer or LocalPacer(clock)
        self.live_rate = live_rate
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._recipient_key = recipient_key
        self._epoch: str | None = None
        self.restore = restore
        # The epoch whose restore request this container owes (its batch found Redis empty).
        self._restore_owed: str | None = None
        default_zone = zone(config.default_time_zone)
        self.compliance = Compliance(
            legal_hours=parse_hours(config.calling_hours),
            default_zone=default_zone,
            max_age=timedelta(hours=config.task_max_age_hours) if config.task_max_age_hours else None,
        )

    def run(self, raw_items: list, remaining_ms: Callable[[], int]) -> BatchReport:
        """Screen, then (for what compliance admits) reserve, plan, dial and settle; then defer."""
        report = BatchReport()
        items = self._parse(raw_items, report)
        batch = self._screen(items, self._wall_clock(), report)
        if batch.admitted:
            self._admit(batch, remaining_ms, report)
        self._defer(batch.deferred, report)
        return report

    # Screen: what the contract refuses is dropped; compliance sorts the rest.

    def _parse(self, raw_items: Any, report: BatchReport) -> list[EnrichedTask]:
        """The batch's tasks; an item the contract refuses, or a repeated messageId, is dropped."""
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
                self._drop(report, parsed, DropReason.REPEATED_MESSAGE_ID)
            else:
                seen.add(parsed.message_id)
                items.append(parsed)
        return items

    def _screen(self, items: list[EnrichedTask], now: datetime, report: BatchReport) -> _Batch:
        """Compliance first: nothing outside its window or expired takes a claim or a slot."""
        batch = _Batch(now)
        for item in items:
            verdict = self.compliance.screen(item, now)
            if isinstance(verdict, Admit) and item.paused:
                # Kept, not dialed: no claim, no slot; looked at again in PAUSED_DEFER_MS.
                batch.defer(item, PAUSED_DEFER_MS, DeferReason.PAUSED)
            elif isinstance(verdict, Admit):
                batch.admits[item.message_id] = verdict
                batch.admitted.append(item)
            elif isinstance(verdict, Wait):
                batch.defer(item, self._wait_ms(now, verdict.opens_at), verdict.reason)
            else:
                self._drop(report, item, verdict)
        return batch

    def _admit(self, batch: _Batch, remaining_ms: Callable[[], int], report: BatchReport) -> None:
        """Reserve, plan, dial and settle the tasks compliance admitted."""
        # The ceiling, or min(live, ceiling) under runtime control (one cached read per 10 s).
        max_cps = self.live_rate.current() if self.live_rate else self.config.max_cps
        if max_cps <= 0:
            # The kill switch: nothing is reserved or claimed, every task waits in the queue.
            report.effective_cps = 0.0
            for item in batch.admitted:
                batch.defer(item, STOPPED_DEFER_MS, DeferReason.STOPPED)
            return
        max_wait_ms = remaining_ms() - SAFETY_MARGIN_MS
        admissions, use_redis, started = self._reserve(batch.admitted, max_wait_ms, remaining_ms(), report, max_cps)
        plan = self._plan(batch, admissions, use_redis, started, report)
        outcomes, late = self._dial_at_slots(plan.to_dial, remaining_ms, report)
        for item in late:
            batch.defer(item, 1000, DeferReason.LATE)
        self._settle(outcomes, [*late, *plan.after_window], plan.admissions, use_redis, report, max_cps)
        settled_at, slots = self._wall_clock(), {i.message_id: at - started for i, at in plan.to_dial}
        report.sent += [
            SentCall(
                item,
                batch.now + timedelta(seconds=slots[item.message_id]),
                settled_at,
                status,
                batch.admits[item.message_id].zones,
            )
            for item, (outcome, status) in outcomes
            if outcome.delivered
        ]

    # Reserve: slots from Redis while it answers, else local ones.

    def _reserve(
        self, items: list[EnrichedTask], max_wait_ms: int, remaining: int, report: BatchReport, max_cps: float
    ) -> tuple[list[Admission], bool, float]:
        """One admission per task, whether Redis gave them (else the local pacer did), and the
        instant on this container's monotonic clock that their waits count from."""
        if self.health.usable():
            try:
                admissions, started = self._reserve_in_redis(items, max_wait_ms, remaining, report, max_cps)
                return admissions, True, started
            except PacerUnavailable as exc:
                self.health.failed()
                report.redis_error = str(exc)
        report.redis_unavailable = True
        admissions = self._reserve_locally(len(items), max_wait_ms, report, max_cps)
        return admissions, False, self._clock()

    def _reserve_in_redis(
        self, items: list[EnrichedTask], max_wait_ms: int, remaining: int, report: BatchReport, max_cps: float
    ) -> tuple[list[Admission], float]:
        asked = self._clock()
        reservation = self.pacer.reserve(
            [self._request(i) for i in items],
            max_cps=max_cps,
            max_wait_ms=max_wait_ms,
            lease_ms=remaining + 5000,
            hold_ms=int(self.health.recovery_hold_s * 1000) if self.health.recovering() else 0,
            # The last call's HTTP round trip and `finish` fit in the margin: after that, a call
            # the worker did not get (the invocation died) stops counting as live.
            settle_ms=SAFETY_MARGIN_MS,
        )
        started = self._script_instant(asked, reservation.now_us)
        self.health.ok()
        report.effective_cps = reservation.effective_cps
        self._check_epoch(reservation.epoch, report)
        self._follow_restore(reservation, report)
        report.fleet_live = reservation.fleet_live
        report.campaign_live = dict(reservation.campaign_live)
        report.capped_campaigns = {i.campaign_id for i in items if i.config.max_concurrent_calls}
        return reservation.admissions, started

    def _script_instant(self, asked: float, now_us: int | None) -> float:
        """When the admission script ran, on this container's monotonic clock: its own clock (Redis
        TIME) read through the wall clock, kept between asking and the answer, since it ran in
        between whatever the two wall clocks say. Counting from the answer instead would start
        every slot late by the time the answer took to be read, which at a small CPU share is a
        throttled period, and the late check would not see it."""
        answered = self._clock()
        if now_us is None:
            return answered
        ago = self._wall_clock().timestamp() - now_us / 1_000_000
        return min(answered, max(asked, answered - ago))

    def _reserve_locally(self, count: int, max_wait_ms: int, report: BatchReport, max_cps: float) -> list[Admission]:
        """After the quarantine (slots Redis gave out may still be dialed), this container's share."""
        quarantine_ms = int(self.health.quarantine_left_s() * 1000)
        if quarantine_ms > 0:
            report.effective_cps = 0.0
            return [Admission(Decision.DEFER, quarantine_ms * 1000) for _ in range(count)]
        horizon_ms = min(max_wait_ms, int(LOCAL_HORIZON_S * 1000))
        reservation = self.local_pacer.reserve(
            count, cps=max_cps / self.config.reserved_concurrency, max_wait_ms=horizon_ms
        )
        report.effective_cps = reservation.effective_cps
        return reservation.admissions

    def _request(self, item: EnrichedTask) -> AdmissionRequest:
        return AdmissionRequest(
            call_id=item.call_id,
            campaign_id=item.campaign_id,
            campaign_max_cps=item.config.max_cps,
            recipient=self._recipient(item),
            campaign_max_live=item.config.max_concurrent_calls,
            min_answer_rate=item.config.min_answer_rate,
        )

    def _recipient(self, item: EnrichedTask) -> str | None:
        return recipient_hash(self._recipient_key, item.phone_number) if self._recipient_key else None

    def _check_epoch(self, epoch: str | None, report: BatchReport) -> None:
        """Redis came back without the claims it held (a failover that lost writes): calls in
        flight may be dialed again, stopped only by the worker's Idempotency-Key. Say so once."""
        if epoch is None:
            return
        if self._epoch is not None and epoch != self._epoch:
            report.claims_reset = True
        self._epoch = epoch

    def _follow_restore(self, reservation: Reservation, report: BatchReport) -> None:
        """The batch that found Redis empty asks the ledger for the claims, once (again on the
        next batch if the send failed, while the hold lasts); the one that ended a hold at its
        bound counts the alarm."""
        state = reservation.restore
        if state is RestoreState.STARTED and reservation.epoch is not None:
            self._restore_owed = reservation.epoch
        elif state is not RestoreState.HOLDING:
            self._restore_owed = None
        if state is RestoreState.TIMED_OUT:
            report.counts[Metric.RESTORE_TIMED_OUT] += 1
        if self._restore_owed is not None and self.restore is not None:
            why = self.restore.request_restore(self._restore_owed, self._wall_clock())
            report.restore_requested = why is None
            report.restore_error = why
            if why is None:
                self._restore_owed = None

    # Plan: what each admission means for its task.

    def _plan(
        self, batch: _Batch, admissions: list[Admission], use_redis: bool, started: float, report: BatchReport
    ) -> _Plan:
        plan = _Plan()
        for item, admission in zip(batch.admitted, admissions, strict=True):
            match admission.decision:
                case Decision.DUPLICATE:
                    report.counts[Metric.DUPLICATE_SUPPRESSED] += 1
                    report.sent.append(SentCall(item))
                case Decision.RECIPIENT_LIMIT:
                    self._drop(report, item, DropReason.RECIPIENT_LIMIT)
                case Decision.LIVE_CALLS:
                    batch.defer(item, LIVE_CALLS_DEFER_MS, DeferReason.LIVE_CALLS)
                case Decision.IN_FLIGHT:
                    batch.defer(item, max(admission.wait_us // 1000, 1), DeferReason.IN_FLIGHT)
                case Decision.RESTORING:
                    wait_ms = min(RESTORING_DEFER_MS, max(admission.wait_us // 1000, 1))
                    batch.defer(item, wait_ms, DeferReason.RESTORING)
                case Decision.DEFER:
                    reason = DeferReason.RATE if use_redis else DeferReason.REDIS_DOWN
                    batch.defer(item, max(admission.wait_us // 1000, 1), reason)
                case Decision.DIAL:
                    plan.admissions[item.call_id] = admission
                    self._plan_dial(batch, plan, item, admission.wait_us, started)
        return plan

    def _plan_dial(self, batch: _Batch, plan: _Plan, item: EnrichedTask, wait_us: int, started: float) -> None:
        # The window is judged at the instant the call would leave, not when the batch came.
        slot = batch.now + timedelta(microseconds=wait_us)
        until = batch.admits[item.message_id].until
        if until is not None and slot >= until:
            plan.after_window.append(item)
            opens = self.compliance.next_opening(item, until)
            batch.defer(item, self._wait_ms(batch.now, opens), DeferReason.OUTSIDE_WINDOW)
        else:
            plan.to_dial.append((item, started + wait_us / 1_000_000))

    @staticmethod
    def _wait_ms(now: datetime, until: datetime | None) -> int:
        """Until `until`, in one deferral hop at most (SQS delays stop at 900 s)."""
        if until is None:
            return MAX_DELAY_SECONDS * 1000
        return max(1000, min(MAX_DELAY_SECONDS * 1000, int((until - now).total_seconds() * 1000) + 1))

    # Dial: each task at its slot, one thread sending them all.

    def _dial_at_slots(
        self, to_dial: list[tuple[EnrichedTask, float]], remaining_ms: Callable[[], int], report: BatchReport
    ) -> tuple[list[tuple[EnrichedTask, Reply]], list[EnrichedTask]]:
        """(each dialed task with its reply, the tasks that would have left late). One thread
        sends every call at its slot, then reads the answers: a thread per POST would cost
        each call wake-ups, and at a small CPU share that CPU is what makes calls late."""
        sending: list[tuple[EnrichedTask, ports.PendingReply]] = []
        late: list[EnrichedTask] = []
        for item, at in sorted(to_dial, key=lambda pair: pair[1]):
            delay = at - self._clock()
            if delay > 0:
                self._sleep(delay)
            report.pacing_delay_ms.append(max(0.0, delay) * 1000)
            read_timeout = max(0.2, min(READ_TIMEOUT_S, (remaining_ms() - 1000) / 1000 - CONNECT_TIMEOUT_S))
            sent = self.worker.send(
                dial_command(item),
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=read_timeout,
                on_time=functools.partial(self._on_time, at),
            )
            if sent is None:
                late.append(item)
            else:
                sending.append((item, sent))
        return [(item, sent.reply()) for item, sent in sending], late

    def _on_time(self, at: float) -> bool:
        # Asked right before the request leaves, its connection ready: a call leaving later than
        # the slack allows could crowd a rolling second, so it goes back to the queue instead.
        return self._clock() - at <= self.config.late_tolerance_s

    # Settle: what the worker answered, counted, then told to Redis in one round trip.

    def _settle(
        self,
        outcomes: list[tuple[EnrichedTask, Reply]],
        not_sent: list[EnrichedTask],
        admissions: dict[str, Admission],
        use_redis: bool,
        report: BatchReport,
        max_cps: float,
    ) -> None:
        settlement = self._tally(outcomes, not_sent, admissions, report)
        if use_redis:
            self._settle_in_redis(settlement, [*not_sent, *(item for item, _ in outcomes)], report, max_cps)

    def _tally(
        self,
        outcomes: list[tuple[EnrichedTask, Reply]],
        not_sent: list[EnrichedTask],
        admissions: dict[str, Admission],
        report: BatchReport,
    ) -> _Settlement:
        # Admitted but surely not placed: no longer live (a 4xx keeps its claim, not its slot).
        settlement = _Settlement(
            released=[i.call_id for i in not_sent], ended={i.call_id: i.campaign_id for i in not_sent}
        )
        for item, (outcome, status) in outcomes:
            admitted = admissions.get(item.call_id)
            slot = admitted.slot_us if admitted and admitted.slot_us is not None else -1
            if outcome.delivered:
                settlement.accepted.append(item.call_id)
                report.counts[Metric.DIALS_SENT] += 1
                if outcome is Outcome.ACCEPTED:
                    settlement.carried[item.call_id] = (item.campaign_id, slot)
                else:
                    # A 409: counted, or ended, from an earlier attempt; the entry admission just
                    # made for it goes (-1, no lease known: nothing is removed).
                    lease_end = admitted.lease_end_us if admitted and admitted.lease_end_us is not None else -1
                    settlement.repeated[item.call_id] = (item.campaign_id, lease_end)
            elif outcome is Outcome.REJECTED:
                # The worker will never take it: kept as settled so no redelivery dials it.
                settlement.accepted.append(item.call_id)
                settlement.ended[item.call_id] = item.campaign_id
                self._drop(report, item, DropReason.WORKER_REJECTED, str(status))
            else:
                report.failures.append(item.message_id)
                report.counts[Metric.DIALS_FAILED] += 1
                if outcome.surely_not_taken:
                    settlement.released.append(item.call_id)
                    settlement.ended[item.call_id] = item.campaign_id
                else:
                    # No answer: the worker may be carrying it, so it stays live (a call's lease).
                    settlement.carried[item.call_id] = (item.campaign_id, slot)
                if outcome is Outcome.OVERLOADED:
                    settlement.overloaded = True
                    report.counts[Metric.WORKER_OVERLOADED] += 1
        return settlement

    def _settle_in_redis(
        self, settlement: _Settlement, admitted: list[EnrichedTask], report: BatchReport, max_cps: float
    ) -> None:
        try:
            if settlement.overloaded:
                self.pacer.slow_down(max_cps=max_cps)
            successes = report.counts[Metric.DIALS_SENT]
            raise_rate = successes if (report.effective_cps or 0) < max_cps else 0
            recipients = {i.call_id: self._recipient(i) for i in admitted}
            settled = Settled(
                accepted=settlement.accepted,
                released=settlement.released,
                carried=settlement.carried,
                ended=settlement.ended,
                repeated=settlement.repeated,
                recipients={c: r for c, r in recipients.items() if r is not None},
            )
            self.pacer.finish(settled, successes=raise_rate, max_cps=max_cps)
        except PacerUnavailable as exc:
            # Claims stay "dialing" until their lease ends; a redelivery then re-sends with the
            # same Idempotency-Key and the worker answers 409. Nothing is dialed twice.
            self.health.failed()
            report.redis_unavailable = True
            report.redis_error = str(exc)

    # Defer: back on the queue, each with its wait and its reason.

    def _defer(self, to_defer: list[tuple[EnrichedTask, int, DeferReason]], report: BatchReport) -> None:
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

    @staticmethod
    def _drop(report: BatchReport, item: EnrichedTask, reason: DropReason, detail: str | None = None) -> None:
        report.drops.append(Drop(reason, item.message_id, item.campaign_id, item.phone_number, detail))
        report.counts[Metric.DIALS_DROPPED] += 1
