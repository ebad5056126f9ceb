"""What the Dispatcher needs of its pacer, its worker client, its deferrer and its restore
requester: the real parts (RedisPacer, WorkerClient, Deferrer, RestoreRequester) and the test
fakes (tests/support/fakes.py) both satisfy these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from dialer_worker.admission import AdmissionRequest, Reservation, Settled
from dialer_worker.worker_client import Reply
from shared.dial_task import EnrichedTask


class Pacer(Protocol):
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
        """One Admission per task, in order; raises PacerUnavailable when its store is not there."""
        ...

    def finish(self, settled: Settled, *, successes: int, max_cps: float) -> None: ...

    def slow_down(self, *, max_cps: float) -> float | None: ...


class PendingReply(Protocol):
    def reply(self) -> Reply:
        """What the worker answered (and its status code; None: no answer)."""
        ...


class Worker(Protocol):
    def send(
        self,
        command: dict[str, Any],
        *,
        connect_timeout: float,
        read_timeout: float,
        on_time: Callable[[], bool],
    ) -> PendingReply | None:
        """Sends the POST unless `on_time()`, asked right before it would leave, says no (None);
        its answer is read later."""
        ...

    def close(self) -> None:
        """Closes the connections it keeps."""
        ...


class Deferrer(Protocol):
    def defer(self, entries: Sequence[tuple[EnrichedTask, int]]) -> dict[str, str]:
        """entries: (task, wait ms). Returns {messageId: why} for the tasks NOT re-queued."""
        ...


class RestoreRequester(Protocol):
    def request_restore(self, epoch: str, requested_at: datetime) -> str | None:
        """Asks the ledger to restore the claims of the Redis that began `epoch`: None once the
        request is sent, else why not."""
        ...
