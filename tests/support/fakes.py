"""In-memory stand-ins for the dialer's parts, for unit tests of its batch logic without services.

Each keeps what it was asked, so a test can say what the Dispatcher did; none decides anything the
real part would decide differently in the cases the tests use.
"""

from __future__ import annotations

from concurrent.futures import Future

from redis.exceptions import ConnectionError as RedisConnectionError

from dialer_worker.admission import Admission, Decision, Reservation
from dialer_worker.worker_client import Outcome, classify


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
        self.reserved: list[list] = []
        self.finished: list[dict] = []
        self.slowed_down = 0

    def reserve(self, tasks, *, max_cps, max_wait_ms, lease_ms, hold_ms=0) -> Reservation:
        if self.down:
            raise RedisConnectionError("Redis is down (fake)")
        self.reserved.append(list(tasks))
        admissions = self.scripted.pop(0) if self.scripted else [Admission(Decision.DIAL, 0) for _ in tasks]
        return Reservation(admissions, self.effective_cps)

    def finish(self, *, accepted, released, successes, max_cps, recipients=None, ended=None) -> None:
        if self.down:
            raise RedisConnectionError("Redis is down (fake)")
        self.finished.append(
            {
                "accepted": list(accepted),
                "released": list(released),
                "successes": successes,
                "recipients": recipients,
                "ended": dict(ended or {}),
            }
        )

    def slow_down(self, *, max_cps):
        self.slowed_down += 1
        return max_cps / 2


class FakeWorker:
    """The worker's replies by status code, in order (default 202); None means no answer."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.commands: list[dict] = []

    def dial(self, command, *, connect_timeout, read_timeout):
        self.commands.append(command)
        status = self.statuses.pop(0) if self.statuses else 202
        if status is None:
            return Outcome.AMBIGUOUS, None
        return classify(status), status


class FakeDeferrer:
    """Records what would be re-queued; `failing` names messageIds whose re-send fails."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.failing = failing or set()
        self.deferred: list[tuple[str, int]] = []

    def defer(self, entries):
        self.deferred += [(task.message_id, wait_ms) for task, wait_ms in entries]
        return {task.message_id: "fake_failure" for task, _ in entries if task.message_id in self.failing}


class InlineExecutor:
    """Runs each submitted call at once, on the caller's thread."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass
