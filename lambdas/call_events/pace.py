"""Answer-rate pacing, the rule alone (docs/design.md, "Call events"): what a campaign's pace
factor becomes given its outcome window. The call-events script (`loop.py`) applies the same rule
inside Redis; tests hold the two to each other.

Over the campaign's last `window` outcomes (newest first), the answer rate is the share of
answered + machine. With at least `min_samples` outcomes and the rate under the campaign's
minAnswerRate, the factor halves (floor 0.1); at or over it, it climbs by 0.1 up to 1. Either
change happens at most once per cool-down. No minAnswerRate: the factor is 1, whatever the rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.live_calls import ANSWERED_OUTCOMES, PACE_DECREASE, PACE_FLOOR, PACE_INCREASE


@dataclass(frozen=True)
class Pace:
    factor: float = 1.0
    changed_at_us: int | None = None  # when the factor last changed (Redis TIME, µs)


def answer_rate(outcomes: Sequence[str]) -> float | None:
    if not outcomes:
        return None
    return sum(1 for o in outcomes if o in ANSWERED_OUTCOMES) / len(outcomes)


def _round(value: float) -> float:
    return int(value * 10_000 + 0.5) / 10_000


def next_pace(
    pace: Pace,
    outcomes: Sequence[str],
    min_answer_rate: float | None,
    *,
    now_us: int,
    min_samples: int,
    cool_down_us: int,
) -> Pace:
    if min_answer_rate is None:
        return Pace(1.0, pace.changed_at_us)
    if pace.changed_at_us is not None and now_us - pace.changed_at_us < cool_down_us:
        return pace
    rate = answer_rate(outcomes)
    if rate is None:
        return pace
    if rate < min_answer_rate:
        if len(outcomes) >= min_samples and pace.factor > PACE_FLOOR:
            return Pace(max(PACE_FLOOR, _round(pace.factor * PACE_DECREASE)), now_us)
    elif pace.factor < 1:
        return Pace(min(1.0, _round(pace.factor + PACE_INCREASE)), now_us)
    return pace
