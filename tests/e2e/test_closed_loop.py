"""The closed loop end to end: the worker stand-in reports every call, the call-events handler
runs as an event source mapping, and the dialer holds live calls and answer-rate pacing."""

from __future__ import annotations

import time

import pytest
from support.arrivals import most_per_second

from shared.live_calls import pace_key

from .conftest import tasks

pytestmark = pytest.mark.slow


def test_live_call_caps_hold_at_the_worker_with_nothing_lost(local_run, late_check_off):
    run = local_run(
        campaigns=[("capped", "active", {"maxConcurrentCalls": 4}), ("open", "active")],
        max_cps=30,
        dialer_overrides={
            "calling_hours": "00:00-24:00",
            "task_max_age_hours": 0,
            "recipient_daily_limit": 0,
            "max_concurrent_calls": 7,
            **late_check_off,
        },
    )
    run.worker.duration_s = lambda rng: rng.uniform(0.5, 1.5)
    # Five times the campaign's cap (a capped backlog drains at about the cap per deferral hop).
    run.enqueue(tasks(20, "capped") + tasks(20, "open"))
    summary = run.run(timeout=150)
    assert summary.drained and summary.lost == 0 and summary.dialed_twice == 0, summary
    assert summary.dialed == 40 and summary.in_dlq == 0
    peaks = summary.extra["peak_live_calls"]
    assert peaks["capped"] <= 4 and peaks["*"] <= 7, peaks
    assert peaks["capped"] == 4, "the cap was reached, not only respected"
    assert summary.extra["deferrals_by_reason"].get("live_calls", 0) > 0
    # The queue drains when the last call is dialed; its call event follows when the call ends.
    wait_for(lambda: run.worker.events_sent == 40 and run.worker.live() == 0, 20)
    assert run.worker.events_sent == 40
    # Every call event was counted, so nothing is left live in Redis.
    assert run.worker.live() == 0


def wait_for(condition, seconds):
    """Polls `condition` for at most `seconds` (a generous bound, not a measurement)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


# Three seconds of the campaign's full rate (maxCps 10).
BACKLOG = 30


def test_a_poor_answer_rate_halves_the_campaigns_pace_within_a_cool_down_and_it_recovers(local_run):
    cool_down = 4
    run = local_run(
        campaigns=[("poor", "active", {"maxCps": 10, "minAnswerRate": 0.5})],
        max_cps=20,
        parallel=2,
        call_events_overrides={
            "answer_rate_window": 20,
            "answer_rate_min_samples": 10,
            "answer_rate_cool_down_seconds": cool_down,
        },
    )
    run.worker.duration_s = lambda rng: rng.uniform(0.1, 0.4)
    run.worker.answer_rates = {"poor": 0.1}
    import redis as redis_lib

    client = redis_lib.Redis(host=run.redis.host, port=run.redis.port)
    key = pace_key(run.key_prefix, "poor")
    timeline: list[tuple[float, float]] = []
    marks: dict[str, float] = {}

    def drive(r):
        produced = 0
        deadline = time.monotonic() + 110
        while time.monotonic() < deadline:
            # A backlog of BACKLOG tasks not yet dialed, topped up every 0.5 s: seconds of work at
            # the campaign's full rate (so its pace, not its supply, bounds it), and little left
            # to drain once the recovery is seen.
            if produced - len(r.worker.accepted()) < BACKLOG:
                r.enqueue(tasks(6, "poor", start=produced))
                produced += 6
            factor = float(client.hget(key, "factor") or 1)
            now = time.monotonic()
            timeline.append((now, factor))
            if "evidence" not in marks and r.worker.events_sent >= 10:
                marks["evidence"] = now
            if factor <= 0.5 and "slowed" not in marks:
                marks["slowed"] = now
                r.worker.answer_rates = {"poor": 0.95}
            if "slowed" in marks and factor >= 1 and "recovered" not in marks:
                marks["recovered"] = now
            if "recovered" in marks and any(c.at_monotonic >= marks["recovered"] for c in r.worker.accepted()):
                return  # dialed again after the recovery
            time.sleep(0.5)

    summary = run.run(timeout=180, during=drive)
    client.close()
    assert summary.drained and summary.lost == 0 and summary.dialed_twice == 0, summary
    assert {"evidence", "slowed", "recovered"} <= set(marks), (marks, timeline[-5:])
    times = [c.at_monotonic for c in run.worker.accepted()]
    # The factor halves as soon as the evidence is in (no earlier change to cool down from).
    assert marks["slowed"] - marks["evidence"] <= cool_down
    # Calls reserved before the change still leave at their slots (under 2 s of them); from then
    # until the factor recovers, the campaign is dialed at half its rate (5/s) or less. Its full
    # rate again is the factor back at 1 (marks["recovered"]); how fast a loaded machine then
    # dials is the benchmarks' business.
    start = marks["slowed"] + 2
    end = min(start + cool_down, marks["recovered"])
    assert end > start, marks
    slowed = sum(1 for t in times if start <= t < end)
    assert slowed <= most_per_second(5, window_s=end - start), (slowed, marks)
    assert any(t >= marks["recovered"] for t in times), "dialed again after the recovery"
    print("closed loop:", {k: round(v - marks["evidence"], 2) for k, v in marks.items()}, slowed / (end - start))
