"""What the demo's summary explains beyond the counts: which campaigns cap the rate and what rate
that leaves reachable, the rate achieved while calls were due, and one colour per campaign.

Pure functions over the seeded configs and what the run observed, so the unit tests pin them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

# A stretch counts as idle (no call due) when the queue had nothing to receive or in flight (every
# task in it delayed: a calling window not open yet) for longer than this, with no call in it.
# Longer than the live-call deferral (LIVE_CALLS_DEFER_MS), so a campaign at its cap stays due.
IDLE_GAP_S = 5.0
# Campaign colours: matplotlib's tab10 without its red, which the chart keeps for limits.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
LIMIT_COLOUR = "#d62728"


@dataclass(frozen=True)
class Ceiling:
    """The most calls per second one campaign can take, and what sets it."""

    campaign: str
    tasks: int
    cps: float
    bound: str  # "MAX_CPS", "maxCps 5", "maxConcurrentCalls 6 / 2 s calls"

    @property
    def seconds(self) -> float:
        """The shortest time its tasks can take at that rate."""
        return self.tasks / self.cps if self.cps > 0 else float("inf")


def campaign_ceiling(name: str, tasks: int, config: Mapping, max_cps: float, mean_call_s: float) -> Ceiling:
    """min(maxCps, MAX_CPS, maxConcurrentCalls / the mean call): by Little's law a campaign with
    at most N live calls of D seconds each averages at most N / D calls per second."""
    options = [(float(max_cps), "MAX_CPS")]
    if config.get("maxCps"):
        options.append((float(config["maxCps"]), f"maxCps {config['maxCps']:g}"))
    if config.get("maxConcurrentCalls") and mean_call_s > 0:
        live = config["maxConcurrentCalls"]
        options.append((live / mean_call_s, f"maxConcurrentCalls {live} / {mean_call_s:g} s calls"))
    cps, bound = min(options, key=lambda o: o[0])
    return Ceiling(name, tasks, round(cps, 2), bound)


@dataclass(frozen=True)
class Caps:
    """Which share of the dialed tasks is in campaigns capped below MAX_CPS, and what it allows."""

    max_cps: float
    tasks: int
    capped_tasks: int
    capped: tuple[Ceiling, ...]
    capped_cps: float  # the capped campaigns' ceilings added up
    shortest_s: float  # no run can dial these tasks faster, whatever MAX_CPS is above the caps
    reachable_cps: float  # tasks / shortest_s: the best average rate over the run
    slowest: str | None  # the campaign (or "MAX_CPS") that sets shortest_s

    @property
    def capped_share(self) -> float:
        return self.capped_tasks / self.tasks if self.tasks else 0.0

    def as_dict(self, achieved: Mapping[str, float] | None = None) -> dict:
        return {
            **asdict(self),
            "capped_share": round(self.capped_share, 3),
            "explained": self.explain(achieved),
            "reachable": self.explain_reachable(),
        }

    def explain(self, achieved: Mapping[str, float] | None = None) -> str:
        """`achieved`: each campaign's observed rate (campaign_rates), shown beside its ceiling."""
        if not self.capped:
            return f"no campaign is capped below MAX_CPS {self.max_cps:g}"
        seen = achieved or {}
        # A campaign with a single task is never held by its rate: named, not explained.
        names = ", ".join(
            f"{c.campaign} {c.cps:g} CPS ({c.bound}{f'; achieved {seen[c.campaign]:g}' if c.campaign in seen else ''})"
            for c in self.capped
            if c.tasks > 1
        )
        single = [c.campaign for c in self.capped if c.tasks == 1]
        if single:
            names += f"{', ' if names else ''}{' and '.join(single)} (one task)"
        return (
            f"{self.capped_share:.0%} of tasks ({self.capped_tasks} of {self.tasks}) are in "
            f"{len(self.capped)} capped campaign{'s' if len(self.capped) > 1 else ''}: {names}"
        )

    def explain_reachable(self) -> str:
        if self.slowest == "MAX_CPS":
            why = f"{self.tasks} tasks at MAX_CPS {self.max_cps:g}"
        else:
            slow = next(c for c in self.capped if c.campaign == self.slowest)
            why = f"{slow.campaign}'s {slow.tasks} tasks at {slow.cps:g} CPS take {slow.seconds:.1f} s"
        return f"at most {self.reachable_cps:g} CPS on average ({why}; before answer-rate pacing)"


def caps(
    tasks_by_campaign: Mapping[str, int], configs: Mapping[str, Mapping], max_cps: float, mean_call_s: float
) -> Caps:
    """`tasks_by_campaign`: the tasks each campaign dialed; `configs`: the seeded configs by id."""
    ceilings = [
        campaign_ceiling(name, n, configs.get(name, {}), max_cps, mean_call_s)
        for name, n in sorted(tasks_by_campaign.items())
        if n > 0
    ]
    total = sum(c.tasks for c in ceilings)
    capped = tuple(c for c in ceilings if c.cps < max_cps)
    # The run takes at least as long as its slowest campaign, and as all tasks at MAX_CPS.
    bounds = [(c.seconds, c.campaign) for c in capped] + [(total / max_cps if max_cps > 0 else 0.0, "MAX_CPS")]
    shortest, slowest = max(bounds)
    return Caps(
        max_cps=max_cps,
        tasks=total,
        capped_tasks=sum(c.tasks for c in capped),
        capped=capped,
        capped_cps=round(sum(c.cps for c in capped), 2),
        shortest_s=round(shortest, 2),
        reachable_cps=round(total / shortest, 2) if shortest > 0 else 0.0,
        slowest=slowest if total else None,
    )


@dataclass(frozen=True)
class Achieved:
    """Calls per second from the first call to the last, leaving out the idle stretches."""

    cps: float
    due_s: float  # seconds in which calls were due
    span_s: float  # first call to last call
    idle: tuple[tuple[float, float], ...]  # (start, end) of each stretch left out


def idle_stretches(
    queue_samples: Sequence[tuple[float, bool]], idle_gap_s: float = IDLE_GAP_S
) -> list[tuple[float, float]]:
    """`queue_samples`: (time, nothing to receive or in flight) as the demo polled the queue. A
    run of idle samples lasts from its first to the sample after it (the queue was seen busy
    again); the runs longer than `idle_gap_s`."""
    stretches: list[tuple[float, float]] = []
    begun: float | None = None
    samples = sorted(queue_samples)
    for t, empty in samples:
        if empty and begun is None:
            begun = t
        elif not empty and begun is not None:
            stretches.append((begun, t))
            begun = None
    if begun is not None:
        stretches.append((begun, samples[-1][0]))
    return [(a, b) for a, b in stretches if b - a > idle_gap_s]


def achieved_while_due(
    call_times: Iterable[float], queue_samples: Sequence[tuple[float, bool]], idle_gap_s: float = IDLE_GAP_S
) -> Achieved:
    """(calls - 1) / the seconds from the first call to the last, as the run-wide figure, less
    the idle stretches (idle_stretches) between them in which no call arrived."""
    times = sorted(call_times)
    if len(times) < 2:
        return Achieved(0.0, 0.0, 0.0, ())
    first, last = times[0], times[-1]
    idle = []
    for start, end in idle_stretches(queue_samples, idle_gap_s):
        if any(start < t < end for t in times):
            continue  # a call arrived: the queue was polled too coarsely to see its task
        start, end = max(start, first), min(end, last)
        if end > start:
            idle.append((round(start, 3), round(end, 3)))
    span = last - first
    due = span - sum(end - start for start, end in idle)
    cps = (len(times) - 1) / due if due > 0 else 0.0
    return Achieved(round(cps, 2), round(due, 2), round(span, 2), tuple(idle))


def campaign_rates(times_by_campaign: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each campaign's calls per second from its first call to its last, (calls - 1) / seconds,
    to read beside its ceiling (a campaign with fewer than two calls has none)."""
    rates = {}
    for name, times in sorted(times_by_campaign.items()):
        if len(times) > 1 and max(times) > min(times):
            rates[name] = round((len(times) - 1) / (max(times) - min(times)), 2)
    return rates


# The per-second series the chart draws, in the summary's extra: thousands of numbers, so the
# JSON document carries them only when asked (--series).
SERIES = ("calls_per_second", "calls_per_second_by_campaign", "live_calls")


def json_document(summary: Mapping, *, series: bool = False) -> dict:
    """The summary as printed by --json: its figures, and the series only with `series`."""
    extra = dict(summary.get("extra", {}))
    if not series:
        for name in SERIES:
            extra.pop(name, None)
    return {**summary, "extra": extra}


def campaign_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per campaign, the same in every panel: by sorted name, so a campaign keeps its
    colour from run to run whichever panel lists it first."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}
