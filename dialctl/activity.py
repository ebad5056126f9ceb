"""What the dialers did lately, for `dialctl status --local`: calls sent per second over the last
10 s and deferrals by reason over the last 5 minutes, from the local run's report tally (the sum of
the dialer cores' reports, local_pipeline/functions.py ReportTally).

The tally lives in the `dialctl local up` process, so that process publishes these figures to a
Redis hash under its key prefix every second (`Publisher`), and `status --local` reads the hash
(`read`). The rate is counted from DialsSent, the count the deployed dialer reports to CloudWatch
as its metric of that name: `status --stack` measures the same thing, at CloudWatch's resolution.

Why not count the admitted slots in Redis instead: the fleet's live set holds a call only until its
call event removes it (call_events/loop.py), which locally comes 0.5-2 s after the dial, so it
counts the calls still live, not the calls sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.observability import Metric

PUBLISH_EVERY_S = 1.0
RATE_WINDOW_S = 10.0
DEFERRALS_WINDOW_S = 300.0
# A hash older than this is gone: the figures of a service that stopped publishing are not shown.
EXPIRES_S = 10
_DEFERRED = "deferred."  # the prefix of a deferral reason's field


def key(prefix: str) -> str:
    """The hash, under the run's hash tag like every key of the run (`local down --purge` removes it)."""
    return "{" + prefix + "}:dialctl:activity"


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    dials_sent: int
    deferrals: Mapping[str, int]


class Window:
    """The tally's totals, sampled once a second; figures over the last 10 s and 5 minutes are
    differences between the newest sample and the newest one at least that old (or the first,
    while the run is younger than the window)."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)
        # Keep one sample older than the longest window: the baseline of the next differences.
        while len(self._samples) > 2 and self._samples[1].at <= sample.at - DEFERRALS_WINDOW_S:
            self._samples.popleft()

    def _baseline(self, seconds: float) -> Sample:
        newest = self._samples[-1]
        older = [s for s in self._samples if s.at <= newest.at - seconds]
        return older[-1] if older else self._samples[0]

    def figures(self) -> dict[str, Any]:
        """{"dials", "dials_seconds", "deferred": {reason: n}, "deferred_seconds"}: what happened
        between the newest sample and each window's baseline, and how long that span is."""
        newest = self._samples[-1]
        rate_base, deferrals_base = self._baseline(RATE_WINDOW_S), self._baseline(DEFERRALS_WINDOW_S)
        deferred = {
            reason: n - deferrals_base.deferrals.get(reason, 0)
            for reason, n in sorted(newest.deferrals.items())
            if n - deferrals_base.deferrals.get(reason, 0) > 0
        }
        return {
            "dials": newest.dials_sent - rate_base.dials_sent,
            "dials_seconds": round(newest.at - rate_base.at, 3),
            "deferred": deferred,
            "deferred_seconds": round(newest.at - deferrals_base.at, 3),
        }


def encode(figures: Mapping[str, Any], *, published_at: float) -> dict[str, str]:
    fields = {
        "published_at": f"{published_at:.3f}",
        "dials": str(figures["dials"]),
        "dials_seconds": str(figures["dials_seconds"]),
        "deferred_seconds": str(figures["deferred_seconds"]),
    }
    fields.update({_DEFERRED + reason: str(n) for reason, n in figures["deferred"].items()})
    return fields


def decode(fields: Mapping[Any, Any], *, now: float) -> dict[str, Any] | None:
    """The status parts `measured_cps` and `deferred` from the hash's fields (None when absent)."""
    text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}  # fmt: skip
    if "published_at" not in text:
        return None
    age = round(max(0.0, now - float(text["published_at"])), 1)
    dials, seconds = int(text["dials"]), float(text["dials_seconds"])
    by_reason = {k[len(_DEFERRED) :]: int(v) for k, v in sorted(text.items()) if k.startswith(_DEFERRED)}
    source = "the dialers' reports (DialsSent, Deferred by reason), published by `local up` every second"
    return {
        "measured_cps": {
            "calls_per_second": round(dials / seconds, 2) if seconds > 0 else None,
            "dials": dials,
            "window_seconds": round(seconds, 1),
            "age_seconds": age,
            "source": source,
        },
        "deferred": {
            "by_reason": by_reason,
            "total": sum(by_reason.values()),
            "window_seconds": round(float(text["deferred_seconds"]), 1),
            "age_seconds": age,
            "source": source,
        },
    }


def read(client: Any, prefix: str, *, now: float | None = None) -> dict[str, Any] | None:
    return decode(client.hgetall(key(prefix)), now=time.time() if now is None else now)


class Publisher:
    """Samples `totals()` (DialsSent, deferrals by reason) every second and writes the figures of
    its `Window` to the hash, replaced whole in one MULTI/EXEC so a reader never sees half of it."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        totals: Callable[[], tuple[int, Mapping[str, int]]],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.key, self.totals = client, key(prefix), totals
        self.clock, self.wall = clock, wall
        self.window = Window()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sample()  # the baseline: the run's start

    def sample(self) -> None:
        dials, deferrals = self.totals()
        self.window.add(Sample(self.clock(), dials, dict(deferrals)))

    def publish(self) -> None:
        self.sample()
        transaction = self.client.pipeline(transaction=True)
        transaction.delete(self.key)
        transaction.hset(self.key, mapping=encode(self.window.figures(), published_at=self.wall()))
        transaction.expire(self.key, EXPIRES_S)
        transaction.execute()

    def start(self) -> Publisher:
        self.publish()  # at once: a `status` right after `local up` finds the hash (figures over 0 s)
        self._thread = threading.Thread(target=self._loop, name="dialctl-activity", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(PUBLISH_EVERY_S):
            try:
                self.publish()
            except Exception:  # noqa: BLE001 (Redis away a moment: status says the figures are missing)
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None


def tally_totals(tally: Any) -> Callable[[], tuple[int, Mapping[str, int]]]:
    """Totals of a ReportTally, read from this thread while the dialers add to it: dict() of a
    Counter copies it in one step of the interpreter, so no copy is torn."""

    def totals() -> tuple[int, Mapping[str, int]]:
        return int(tally.dial_counts.get(Metric.DIALS_SENT, 0)), dict(tally.deferrals)

    return totals
