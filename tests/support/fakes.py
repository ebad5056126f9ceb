"""In-memory stand-ins for the dialer's parts, for unit tests of its batch logic without services.

Each keeps what it was asked, so a test can say what the Dispatcher did; none decides anything the
real part would decide differently in the cases the tests use. Each satisfies the port the
Dispatcher takes it as (dialer_worker.ports), which the assignments at the end have mypy check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dialer_worker import ports
from dialer_worker.admission import Admission, AdmissionRequest, Decision, PacerUnavailable, Reservation, Settled
from dialer_worker.worker_client import Outcome, Reply, classify
from shared.dial_task import EnrichedTask


class FakeClock:
    """Monotonic time that moves only when someone sleeps (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class FakePacer:
    """Answers each reserve with the admissions a test scripted (default: dial now), or raises as
    an unreachable Redis would; records finish and slow_down calls."""

    def __init__(self, effective_cps: float = 50.0) -> None:
        self.scripted: list[list[Admission]] = []
        self.effective_cps = effective_cps
        self.down = False
        self.reserved: list[list[AdmissionRequest]] = []
        self.finished: list[dict[str, Any]] = []
        self.slowed_down = 0
        # The script's clock (µs) to answer with (None: a reply without one), read when the
        # script "runs"; then `answering` runs (a test moves its clock: the reply's trip back).
        self.script_now_us: Callable[[], int] | None = None
        self.answering: Callable[[], None] | None = None

    def reserve(
        self,
        tasks: Sequence[AdmissionRequest],
        *,
        max_cps: float,
        max_wait_ms: int,
        lease_ms: int,
        hold_ms: int = 0,
        settle_ms: int = 0,
    ) -> Reservation:
        if self.down:
            raise PacerUnavailable("ConnectionError: Redis is down (fake)")
        self.reserved.append(list(tasks))
        admissions = self.scripted.pop(0) if self.scripted else [Admission(Decision.DIAL, 0) for _ in tasks]
        now_us = self.script_now_us() if self.script_now_us else None
        if self.answering:
            self.answering()
        return Reservation(admissions, self.effective_cps, now_us=now_us)

    def finish(self, settled: Settled, *, successes: int, max_cps: float) -> None:
        if self.down:
            raise PacerUnavailable("ConnectionError: Redis is down (fake)")
        self.finished.append(
            {
                "accepted": list(settled.accepted),
                "released": list(settled.released),
                "successes": successes,
                "recipients": dict(settled.recipients) or None,
                "ended": dict(settled.ended),
                "carried": dict(settled.carried),
                "repeated": dict(settled.repeated),
            }
        )

    def slow_down(self, *, max_cps: float) -> float | None:
        self.slowed_down += 1
        return max_cps / 2


class FakeWorker:
    """The worker's replies by status code, in order (default 202); None means no answer.
    `before_send` runs once the connection would be ready, before `on_time` is asked (a slow
    connect, say)."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.commands: list[dict[str, Any]] = []
        self.before_send: Callable[[], None] = lambda: None
        self.closed = False

    def send(
        self,
        command: dict[str, Any],
        *,
        connect_timeout: float,
        read_timeout: float,
        on_time: Callable[[], bool] = lambda: True,
    ) -> FakeReply | None:
        self.before_send()
        if not on_time():
            return None
        self.commands.append(command)
        status = self.statuses.pop(0) if self.statuses else 202
        return FakeReply((Outcome.AMBIGUOUS, None) if status is None else (classify(status), status))

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class FakeReply:
    answer: Reply

    def reply(self) -> Reply:
        return self.answer


class FakeDeferrer:
    """Records what would be re-queued; `failing` names messageIds whose re-send fails."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.failing = failing or set()
        self.deferred: list[tuple[str, int]] = []

    def defer(self, entries: Sequence[tuple[EnrichedTask, int]]) -> dict[str, str]:
        self.deferred += [(task.message_id, wait_ms) for task, wait_ms in entries]
        return {task.message_id: "fake_failure" for task, _ in entries if task.message_id in self.failing}


# Each fake is what the Dispatcher takes it as: mypy fails here when a port and its fake part ways.
_pacer: ports.Pacer = FakePacer()
_worker: ports.Worker = FakeWorker()
_deferrer: ports.Deferrer = FakeDeferrer()
