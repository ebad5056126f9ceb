"""Load test through the local pipe: 10,000 tasks at MAX_CPS=200 with several executions in flight.

All tasks are queued up front, a backlog of 50 s of dialing. Prints achieved CPS next to the rate
the pacing aims for (MAX_CPS / (1 + SLACK)), the peak rolling-second rate, tasks lost and dialed
twice, and the share of one core the whole process used (pipe pollers, SQS endpoint, worker
stand-in and handlers): achieved at the pacing's rate with the process well under one core means
the pacing, not the harness, sets the pace.
Run: `.venv/bin/python benchmarks/bench_load.py [--tasks 10000] [--max-cps 200] [--parallel 8]`
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import time

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("LOG_LEVEL", "INFO")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--max-cps", type=float, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()

    from dialer_worker.admission import SLACK
    from dialer_worker.env import GATES_OFF
    from local_pipeline.database import DIALABLE_CONFIG, throwaway_database
    from local_pipeline.run import LocalRun, dialable_number, favour_the_stand_in
    from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis
    from stacks.settings import DEV

    favour_the_stand_in()  # the rates below are the stand-in's arrival times

    pg, pg_throwaway = reuse_or_start_postgres()
    redis, redis_throwaway = reuse_or_start_redis()
    sink = io.StringIO()  # the handlers' JSON logs and metrics; the summary reads their reports
    try:
        with (
            throwaway_database(pg, [("load", "active", DIALABLE_CONFIG)], prefix="bench") as dbname,
            contextlib.redirect_stdout(sink),
        ):
            # Pacing and the pipe alone: the other gates switched off the documented way.
            run = LocalRun(DEV, postgres=pg, dbname=dbname, redis=redis, max_cps=args.max_cps,
                           visibility_timeout_seconds=30, parallel=args.parallel, dialer_overrides=GATES_OFF)  # fmt: skip
            tasks = [
                {"campaignId": "load", "contactId": f"c-{i}", "phoneNumber": dialable_number(i), "attempts": 0}
                for i in range(args.tasks)
            ]

            run.enqueue(tasks)
            wall0, cpu0, rss0 = (
                time.monotonic(),
                time.process_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            )
            summary = run.run(timeout=args.tasks / args.max_cps * 3 + 120)
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            run.close()
    finally:
        for throwaway in (pg_throwaway, redis_throwaway):
            if throwaway:
                throwaway.destroy()

    rows = [
        ("tasks", args.tasks),
        ("pipe executions in flight", args.parallel),
        ("MAX_CPS", f"{args.max_cps:g}"),
        ("pacing's rate, MAX_CPS / (1 + SLACK)", f"{args.max_cps / (1 + SLACK):.1f}"),
        (
            "achieved CPS (accepted calls)",
            f"{summary.achieved_cps:.1f} ({summary.achieved_cps / args.max_cps:.1%} of MAX_CPS, "
            f"{summary.achieved_cps * (1 + SLACK) / args.max_cps:.1%} of the pacing's rate)",
        ),  # fmt: skip
        ("peak rolling-second rate", summary.peak_rolling_second),
        ("queue drained", summary.drained),
        ("dialed / not dialed", f"{summary.dialed} / {args.tasks - summary.dialed}"),
        ("tasks lost", summary.lost),
        ("tasks dialed twice", summary.dialed_twice),
        ("deferred / in DLQ", f"{summary.deferred} / {summary.in_dlq}"),
        ("wall time (s)", f"{wall:.1f}"),
        ("process CPU (s), share of one core", f"{cpu:.1f}, {cpu / wall:.0%}"),
        (
            "max RSS (MB)",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} (before the run {rss0 / 1024:.0f})",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print("load through the local pipe")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
