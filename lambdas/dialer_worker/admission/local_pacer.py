"""Pacing without Redis, for while it is unreachable."""

from __future__ import annotations

import time
from collections.abc import Callable

from dialer_worker.admission.decision import Admission, Decision, Reservation
from dialer_worker.admission.tuning import SLACK


class LocalPacer:
    """Pacing without Redis: this container alone at MAX_CPS / reserved concurrency, so the whole
    fleet stays under MAX_CPS even when every container is degraded at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next = 0.0

    def reserve(self, count: int, *, cps: float, max_wait_ms: int) -> Reservation:
        now = self._clock()
        interval = (1 + SLACK) / cps
        slot = max(now, self._next)
        admissions = []
        for _ in range(count):
            if (slot - now) * 1000 > max_wait_ms:
                admissions.append(Admission(Decision.DEFER, int((slot - now) * 1_000_000)))
                continue
            admissions.append(Admission(Decision.DIAL, int((slot - now) * 1_000_000)))
            slot += interval
        self._next = slot
        return Reservation(admissions, cps)
