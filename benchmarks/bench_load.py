"""Load test through the local pipe: 10,000 tasks at MAX_CPS=200 with several executions in flight.

All tasks are queued up front, a backlog of 50 s of dialing. Prints achieved CPS next to the rate
the pacing aims for (MAX_CPS / (1 + SLACK)), the peak rolling-second rate at the worker stand-in,
tasks lost and dialed twice, deferrals by reason, and the share of one core each process used:
the runner's (pipe pollers, enrichment, dialer, call-events and ledger handlers), the local SQS
endpoint's and the worker stand-in's (each has its own). Achieved at the pacing's rate with the
runner well under one core means the pacing, not the harness, sets the pace.

Achieved CPS is given twice. From the first accepted call to the last, it counts the end of the
run: a task deferred (a call that would have left late, say) is sent again with a delay and
dialed after the backlog, and the last of them wait in a partial batch for the pipe's batching
window (the settings' value) before they are dialed; a run of a few thousand tasks spends a
noticeable share of its time on that. Over the first 99% of the accepted calls, it is the pace
while the backlog lasted; the line says how long the last 1% took after them.
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

# The share of the accepted calls the pace "while the backlog lasted" is measured over.
BULK_SHARE = 0.99


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def process_cpu_s(pid: int | None) -> float | None:
    """User and system CPU seconds of another process so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--max-cps", type=float, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()

    sink = io.StringIO()  # the handlers' JSON logs and metrics; the summary reads their reports
    # The handlers' loggers take sys.stdout when their modules are imported: the sink, from here.
    with contextlib.redirect_stdout(sink):
        from dialer_worker.admission import SLACK
        from dialer_worker.env import GATES_OFF
        from local_pipeline.database import DIALABLE_CONFIG, throwaway_database
        from local_pipeline.run import LocalRun, dialable_number, favour_the_stand_in
        from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis
        from stacks.settings import DEV

    favour_the_stand_in()  # the rates below are the stand-in's arrival times

    pg, pg_throwaway = reuse_or_start_postgres()
    redis, redis_throwaway = reuse_or_start_redis()
    load_before = load_average()
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
            children = {"local SQS endpoint": run.sqs.pid, "worker stand-in": run.worker.pid}
            children_cpu0 = {name: process_cpu_s(pid) for name, pid in children.items()}
            wall0, cpu0, rss0 = (
                time.monotonic(),
                time.process_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            )
            summary = run.run(timeout=args.tasks / args.max_cps * 3 + 120)
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            children_cpu = {name: process_cpu_s(pid) for name, pid in children.items()}
            accepted = sorted(c.at_monotonic for c in run.worker.calls if 200 <= c.status < 300)
            load_after = load_average()
            run.close()
    finally:
        for throwaway in (pg_throwaway, redis_throwaway):
            if throwaway:
                throwaway.destroy()

    pacing = args.max_cps / (1 + SLACK)

    def of_rates(cps: float) -> str:
        return f"{cps:.1f} ({cps / args.max_cps:.1%} of MAX_CPS, {cps / pacing:.1%} of the pacing's rate)"

    bulk = accepted[: max(2, int(len(accepted) * BULK_SHARE))]
    rest_s = accepted[-1] - bulk[-1] if accepted else 0.0
    deferrals = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.extra["deferrals_by_reason"].items()))
    shares = [("runner process (pipe, handlers) CPU (s), share of one core", f"{cpu:.1f}, {cpu / wall:.0%}")]
    for name, before in children_cpu0.items():
        after = children_cpu[name]
        used = after - before if after is not None and before is not None else None
        shares.append((f"{name} process CPU (s), share of one core",
                       f"{used:.1f}, {used / wall:.0%}" if used is not None else "not known"))  # fmt: skip
    rows = [
        ("tasks", args.tasks),
        ("pipe executions in flight", args.parallel),
        ("MAX_CPS", f"{args.max_cps:g}"),
        ("pacing's rate, MAX_CPS / (1 + SLACK)", f"{pacing:.1f}"),
        ("achieved CPS, first to last accepted call", of_rates(summary.achieved_cps)),
        (
            f"achieved CPS over the first {BULK_SHARE:.0%} of them",
            f"{of_rates(rate(bulk))}; the last {1 - BULK_SHARE:.0%} {rest_s:.1f} s after",
        ),
        ("peak rolling-second rate at the worker", summary.peak_rolling_second),
        ("queue drained", summary.drained),
        ("dialed / not dialed", f"{summary.dialed} / {args.tasks - summary.dialed}"),
        ("tasks lost", summary.lost),
        ("tasks dialed twice", summary.dialed_twice),
        ("deferred (by reason) / in DLQ", f"{summary.deferred} ({deferrals or 'none'}) / {summary.in_dlq}"),
        ("items retried (back after the visibility timeout)", summary.retried_items),
        ("wall time (s)", f"{wall:.1f}"),
        *shares,
        (
            "runner max RSS (MB)",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} (before the run {rss0 / 1024:.0f})",
        ),
        ("load average before / after", f"{load_before} / {load_after}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"load through the local pipe ({os.cpu_count()} cores)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
