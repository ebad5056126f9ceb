"""The answer-rate rule alone: halving under minAnswerRate with enough samples, the floor, the
cool-down, additive recovery, and a campaign without minAnswerRate never slowing."""

from __future__ import annotations

import pytest

from call_events.pace import Pace, answer_rate, next_pace

S = 1_000_000  # µs
RULES = {"min_samples": 20, "cool_down_us": 30 * S}


def window(answered: int, total: int) -> list[str]:
    return ["answered"] * answered + ["no_answer"] * (total - answered)


def test_answer_rate_counts_answered_and_machine():
    assert answer_rate(["answered", "machine", "busy", "no_answer"]) == 0.5
    assert answer_rate([]) is None


def test_under_the_floor_with_enough_samples_halves():
    assert next_pace(Pace(), window(5, 20), 0.5, now_us=100 * S, **RULES) == Pace(0.5, 100 * S)


def test_too_few_samples_is_no_evidence():
    assert next_pace(Pace(), window(0, 19), 0.5, now_us=100 * S, **RULES) == Pace()


def test_at_most_one_change_per_cool_down():
    slowed = Pace(0.5, 100 * S)
    assert next_pace(slowed, window(0, 50), 0.5, now_us=129 * S, **RULES) == slowed
    assert next_pace(slowed, window(0, 50), 0.5, now_us=130 * S, **RULES) == Pace(0.25, 130 * S)


def test_the_factor_never_goes_under_the_floor():
    pace = Pace()
    for k in range(10):
        pace = next_pace(pace, window(0, 50), 0.5, now_us=k * 31 * S, **RULES)
    assert pace.factor == 0.1
    # At the floor, further evidence changes nothing (not even the cool-down's start).
    assert next_pace(pace, window(0, 50), 0.5, now_us=999 * S, **RULES) == pace


def test_at_or_over_the_floor_it_climbs_back_by_a_tenth_per_cool_down():
    pace = Pace(0.25, 0)
    seen = []
    for k in range(1, 12):
        pace = next_pace(pace, window(25, 50), 0.5, now_us=k * 30 * S, **RULES)
        seen.append(pace.factor)
    assert seen[:8] == [0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.0]
    assert seen[-1] == 1.0


def test_without_min_answer_rate_the_campaign_never_slows():
    assert next_pace(Pace(), window(0, 50), None, now_us=100 * S, **RULES).factor == 1.0
    # A minAnswerRate removed while slowed: back to full rate at once.
    assert next_pace(Pace(0.2, 99 * S), window(0, 50), None, now_us=100 * S, **RULES).factor == 1.0


@pytest.mark.parametrize("minimum", [0.0, 0.3])
def test_a_share_equal_to_the_minimum_is_not_under_it(minimum):
    total = 20
    answered = int(minimum * total)
    assert next_pace(Pace(), window(answered, total), minimum, now_us=S, **RULES) == Pace()
