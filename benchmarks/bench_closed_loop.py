"""The closed loop, measured through the local pipeline (`LocalRun`: the real handlers, PostgreSQL,
Redis, the local SQS, the worker stand-in reporting every call to the call-events handler).

(a) Live calls: two campaigns with maxConcurrentCalls (5 and 8) and one without, a fleet cap
    (MAX_CONCURRENT_CALLS 12), calls lasting 1 to 3 s; the most live calls at once, counted at
    the worker stand-in (a call is live there from its 202 until it sends its event), per
    campaign and for the fleet, against each limit; tasks lost and dialed twice.
(b) Answer-rate pacing: one campaign at maxCps 10 with minAnswerRate 0.5, answered 10% of the
    time, then 95% once its pace has fallen. Seconds from the evidence (the worker has sent
    min_samples events) until the pace factor is 0.5 or less, until the campaign's calls at the
    worker run at half its rate or less (over 2 s), and from the answers recovering until the
    factor is back to 1 and the calls back at 90% of its rate; measured with the cool-down
    shortened to 5 s (the deployed one is 30 s: every figure scales with it).
(c) Redis round trips per dial, from the dialer's own counters over both runs: one admission
    script call per batch plus one finish per batch that dialed, whatever the gates.

Every figure block shows the machine's load average (1, 5, 15 min) when it was taken.
Run: `.venv/bin/python benchmarks/bench_closed_loop.py [--max-cps 20]` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]
os.environ.setdefault("LOG_LEVEL", "WARNING")

import redis  # noqa: E402

from dialer_worker.env import GATES_OFF  # noqa: E402
from local_pipeline import database  # noqa: E402
from local_pipeline.run import LocalRun, favour_the_stand_in  # noqa: E402
from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis  # noqa: E402
from shared.live_calls import pace_key  # noqa: E402
from stacks.settings import DEV  # noqa: E402

FAST = {"visibility_timeout_seconds": 5, "batching_window_seconds": 0.5}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def tasks(n, campaign, start=0):
    return [
        {
            "campaignId": campaign,
            "contactId": f"{campaign}-{i}",
            "phoneNumber": f"+1415555{i % 10000:04d}",
            "attempts": 0,
        }
        for i in range(start, start + n)
    ]


def dialer_calls(run: LocalRun) -> Counter:
    return Counter(run.functions.dispatcher.pacer.calls)


def live_calls(pg, rd, max_cps) -> tuple[dict, Counter]:
    limits = {"small": 5, "medium": 8, "open": None}
    campaigns = [
        (c, "active", {**database.DIALABLE_CONFIG, **({"maxConcurrentCalls": m} if m else {})})
        for c, m in limits.items()
    ]
    with database.throwaway_database(pg, campaigns, prefix="bench_loop") as db:
        run = LocalRun(DEV, postgres=pg, dbname=db, redis=rd, max_cps=max_cps, parallel=4,
                       dialer_overrides={**GATES_OFF, "max_concurrent_calls": 12}, **FAST)  # fmt: skip
        try:
            run.worker.duration_s = lambda rng: rng.uniform(1.0, 3.0)
            run.enqueue(tasks(60, "small") + tasks(60, "medium") + tasks(60, "open"))
            summary = run.run(timeout=300)
            calls = dialer_calls(run)
        finally:
            run.close()
    peaks = summary.extra["peak_live_calls"]
    rows = {c: (peaks.get(c, 0), limits[c] or "none") for c in limits} | {"fleet": (peaks.get("*", 0), 12)}
    return {
        "rows": rows,
        "dialed": summary.dialed,
        "lost": summary.lost,
        "twice": summary.dialed_twice,
        "live_calls deferrals": summary.extra["deferrals_by_reason"].get("live_calls", 0),
        "seconds": summary.seconds,
        "sent": summary.extra["call_events_sent"],
        "dials": summary.dialed,
        "load": load(),
    }, calls


def pacing(pg, rd, max_cps, cool_down=5) -> tuple[dict, Counter]:
    config = {**database.DIALABLE_CONFIG, "maxCps": 10, "minAnswerRate": 0.5}
    with database.throwaway_database(pg, [("poor", "active", config)], prefix="bench_loop") as db:
        run = LocalRun(DEV, postgres=pg, dbname=db, redis=rd, max_cps=max_cps, parallel=2, dialer_overrides=GATES_OFF,
                       call_events_overrides={"answer_rate_window": 20, "answer_rate_min_samples": 10,
                                              "answer_rate_cool_down_seconds": cool_down}, **FAST)  # fmt: skip
        client = redis.Redis(host=rd.host, port=rd.port)
        key = pace_key(run.key_prefix, "poor")
        marks: dict[str, float] = {}
        lowest = [1.0]
        try:
            run.worker.duration_s = lambda rng: rng.uniform(0.1, 0.4)
            run.worker.answer_rates = {"poor": 0.1}

            def drive(r):
                produced = 0
                deadline = time.monotonic() + 150
                while time.monotonic() < deadline:
                    r.enqueue(tasks(6, "poor", start=produced))
                    produced += 6
                    factor = float(client.hget(key, "factor") or 1)
                    lowest[0] = min(lowest[0], factor)
                    now = time.monotonic()
                    if "evidence" not in marks and r.worker.events_sent >= 10:
                        marks["evidence"] = now
                    if factor <= 0.5 and "slowed" not in marks:
                        marks["slowed"] = now
                        marks["answers_recover"] = now
                        r.worker.answer_rates = {"poor": 0.95}
                    if "slowed" in marks and factor >= 1 and "recovered" not in marks:
                        marks["recovered"] = now
                    if "recovered" in marks and now - marks["recovered"] > 6:
                        return
                    time.sleep(0.5)

            summary = run.run(timeout=300, during=drive)
            calls = dialer_calls(run)
            times = sorted(c.at_monotonic for c in run.worker.accepted())
        finally:
            client.close()
            run.close()

    def first_window(start, test, span=2.0):
        t = start
        while t < (times[-1] if times else start):
            rate = sum(1 for x in times if t <= x < t + span) / span
            if test(rate):
                return t
            t += 0.25
        return None

    evidence = marks.get("evidence")
    half = first_window(evidence, lambda r: r <= 5) if evidence else None
    back = first_window(marks["answers_recover"], lambda r: r >= 9) if "answers_recover" in marks else None
    fmt = lambda v: "never" if v is None else f"{v:.1f}"  # noqa: E731
    return {
        "cool-down (s)": cool_down,
        "evidence -> factor <= 0.5 (s, polled every 0.5 s)": fmt(
            marks.get("slowed", None) and marks["slowed"] - evidence
        ),
        "evidence -> calls <= half rate (s)": fmt(half and half - evidence),
        "lowest pace factor": lowest[0],
        "answers recover -> factor 1 (s)": fmt(
            marks.get("recovered") and marks["recovered"] - marks["answers_recover"]
        ),
        "answers recover -> calls >= 90% (s)": fmt(back and back - marks["answers_recover"]),
        "dialed / lost / twice": f"{summary.dialed} / {summary.lost} / {summary.dialed_twice}",
        "dials": summary.dialed,
        "load": load(),
    }, calls


def table(title, rows):
    print(title)
    width = max(len(str(k)) for k in rows)
    for k, v in rows.items():
        print(f"  {k:<{width}}  {v}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-cps", type=float, default=20)
    args = parser.parse_args()
    favour_the_stand_in()  # the live calls below are counted at the stand-in
    pg, pg_throwaway = reuse_or_start_postgres()
    rd, rd_throwaway = reuse_or_start_redis()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            live, live_rt = live_calls(pg, rd, args.max_cps)
            pace, pace_rt = pacing(pg, rd, args.max_cps)
    finally:
        if pg_throwaway:
            pg_throwaway.destroy()
        if rd_throwaway:
            rd_throwaway.destroy()
    print(f"MAX_CPS {args.max_cps:g}; {os.cpu_count()} cores\n")
    print(f"(a) live calls at once, counted at the worker stand-in (load {live['load']})")
    print(f"  {'':<8}{'peak':>6}{'limit':>7}")
    for name, (peak, limit) in live["rows"].items():
        print(f"  {name:<8}{peak:>6}{limit!s:>7}")
    print(f"  dialed {live['dialed']}, lost {live['lost']}, dialed twice {live['twice']}, call events sent {live['sent']}, "
          f"deferred for live calls {live['live_calls deferrals']}, {live['seconds']} s\n")  # fmt: skip
    table(f"(b) answer-rate pacing, campaign maxCps 10, minAnswerRate 0.5 (load {pace['load']})",
          {k: v for k, v in pace.items() if k not in ("load", "dials")})  # fmt: skip
    rows = {}
    for name, calls, dials in (("(a) live calls", live_rt, live["dials"]), ("(b) pacing", pace_rt, pace["dials"])):
        total = sum(calls.values())
        rows[name] = (
            f"reserve {calls['reserve']}, finish {calls['finish']}, slow_down {calls['slow_down']}: "
            f"{total / max(1, dials):.2f} round trips per dial, {total / max(1, calls['reserve']):.2f} per batch"
        )
    table(f"(c) Redis round trips (load {load()})", rows)


if __name__ == "__main__":
    main()
