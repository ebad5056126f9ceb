"""The dialer at the CPU share Lambda gives each memory size, N dialers sharing one MAX_CPS.

A Lambda function gets CPU in proportion to its memory: 1,769 MB is one vCPU, enforced as a CFS
quota per 100 ms period. Here each dialer is its own OS process in its own cgroup with that quota
(cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`), running the real handler
(`dialer_worker.handler.handler`, configured through `DialerEnv.variables(...)`, the gates not
under test switched off) back to back on batches of 10 enriched items, as Pipes would with a
backlog, with a Lambda-like context. Outside any quota: the worker stand-in (its own process; it
takes every POST's arrival time), Redis, and the local SQS that deferred tasks go to (so each
deferral is counted by its reason, `late` among them) and that each batch's ledger records go to,
as deployed. The items are built here, as the
enrichment would, and reach each dialer as JSON text, which it parses as the runtime would.

Per memory size (and unlimited), with the load average when the row was taken:
- achieved: dials accepted at the worker over the span of their slots, as a share of MAX_CPS (the
  pacing's ceiling is 1 / (1 + SLACK), 97.6%);
- peak 1 s: the most arrivals at the worker in any 1 s window, on the stand-in's own clock;
- late/100: deferrals with reason `late` per 100 dials;
- >10 ms: POSTs that reached the worker more than 10 ms after their slot (not deferred, since they
  arrived). The dial body carries no slot, so each slot comes from Redis: the admission script
  adds every admitted call to the fleet's live-call set with score slot + MAX_CALL_SECONDS (µs,
  Redis TIME, the machine's wall clock), and a call that went out stays there. Arrival (the
  stand-in's time.time()) minus that slot is the lateness a carrier would see, reservation reply
  included, which the dialer's own late check (measured from that reply) cannot see;
- CPU ms/dial: the cgroup's cpuacct usage over the run per dial; throttled: periods throttled
  (cpu.stat nr_throttled) out of periods run, all dialers together;
- $/M dials: Lambda's price for a million dials at that memory: every invocation's measured
  duration rounded up to 1 ms x memory x the arm64 price per GB-second, plus the request price
  (unlimited: priced at 1,769 MB, one vCPU).

`--profile FILE` instead runs one dialer on a full core under cProfile and prints where its CPU
goes (pstats saved to FILE).

Needs root (cgroups); without it, it says so and exits 0.
Run: `sudo .venv/bin/python benchmarks/bench_lambda_share.py [--seconds 20] [--dialers 5] [--max-cps 100]`
(about 2.5 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

# Lambda: 1,769 MB of memory is one vCPU (the dialer spaces its calls by the same figure); the
# quota is enforced per 100 ms CFS period.
from dialer_worker.admission.tuning import MB_PER_VCPU  # noqa: E402

CFS_PERIOD_US = 100_000
MEMORY_SIZES: tuple[int | None, ...] = (128, 256, 512, 1024, None)  # None: no quota
# Lambda's arm64 prices (us-east-1): per GB-second of billed duration, and per request.
ARM64_GB_SECOND_USD = 0.0000133334
REQUEST_USD = 0.20 / 1_000_000
BATCH_SIZE = 10
LATE_AT_WORKER_S = 0.010
GROUP_PREFIX = "bench-lambda-share"


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def quota_us(memory_mb: int | None) -> int | None:
    return None if memory_mb is None else round(memory_mb / MB_PER_VCPU * CFS_PERIOD_US)


# --- cgroups ------------------------------------------------------------------------------------
def _mounts() -> list[tuple[str, str, set[str]]]:
    found = []
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, path, fstype, options, *_ = line.split()
            found.append((fstype, path, set(options.split(","))))
    return found


def _own_path(controller: str) -> str:
    """This process's cgroup under one v1 controller ("" for v2), so groups nest under it."""
    with open("/proc/self/cgroup") as cgroups:
        for line in cgroups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


class CpuGroup:
    """One dialer's cgroup: a CPU quota per CFS period (None: none), its CPU use and throttling."""

    def __init__(self, name: str, quota: int | None, layout: dict) -> None:
        self.version = layout["version"]
        if self.version == 1:
            self.cpu = Path(layout["cpu"]) / name
            self.acct = Path(layout["cpuacct"]) / name
            self.dirs = list(dict.fromkeys([self.cpu, self.acct]))
        else:
            self.cpu = self.acct = Path(layout["root"]) / name
            self.dirs = [self.cpu]
        for directory in self.dirs:
            directory.mkdir()
        if self.version == 1:
            (self.cpu / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self.cpu / "cpu.cfs_quota_us").write_text(str(quota if quota is not None else -1))
        else:
            (self.cpu / "cpu.max").write_text(f"{quota if quota is not None else 'max'} {CFS_PERIOD_US}")

    def add(self, pid: int) -> None:
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(pid))

    def usage_ns(self) -> int:
        if self.version == 1:
            return int((self.acct / "cpuacct.usage").read_text())
        return self._stat()["usage_usec"] * 1000

    def _stat(self) -> dict[str, int]:
        return {k: int(v) for k, v in (line.split() for line in (self.cpu / "cpu.stat").read_text().splitlines())}

    def throttling(self) -> tuple[int, int]:
        """(periods run, periods throttled) so far."""
        stat = self._stat()
        return stat.get("nr_periods", 0), stat.get("nr_throttled", 0)

    def remove(self) -> None:
        for directory in self.dirs:
            if not directory.exists():
                continue
            # A process left behind (a dialer that would not stop) goes back to the parent group.
            for pid in (directory / "cgroup.procs").read_text().split():
                try:
                    (directory.parent / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            try:
                directory.rmdir()
            except OSError as exc:
                print(f"  could not remove cgroup {directory}: {exc}", file=sys.stderr)


def cgroup_layout() -> dict | str:
    """Where to make CPU groups, or why they cannot be made here."""
    if os.geteuid() != 0:
        return "needs root to create cgroups with CPU quotas"
    mounts = _mounts()
    v1 = {c: path for fstype, path, opts in mounts if fstype == "cgroup" for c in ("cpu", "cpuacct") if c in opts}
    if "cpu" in v1 and "cpuacct" in v1:
        return {
            "version": 1,
            "cpu": v1["cpu"] + _own_path("cpu").rstrip("/"),
            "cpuacct": v1["cpuacct"] + _own_path("cpuacct").rstrip("/"),
        }
    for fstype, path, _ in mounts:
        controllers = Path(path) / "cgroup.controllers"
        if fstype == "cgroup2" and controllers.exists() and "cpu" in controllers.read_text().split():
            root = Path(path)
            try:
                (root / "cgroup.subtree_control").write_text("+cpu")
            except OSError as exc:
                return f"cannot enable the cpu controller under {root}: {exc}"
            return {"version": 2, "root": str(root)}
    return "no cgroup cpu controller (v1 cpu + cpuacct, or v2 cpu) on this machine"


def remove_leftover_groups(layout: dict) -> None:
    """Groups of an earlier run that was killed before it could clean up."""
    roots = [layout["cpu"], layout["cpuacct"]] if layout["version"] == 1 else [layout["root"]]
    for root in dict.fromkeys(roots):
        for directory in Path(root).glob(f"{GROUP_PREFIX}-*"):
            try:
                directory.rmdir()
            except OSError:
                pass


# --- one dialer process (under its quota) -------------------------------------------------------
def dialer_process(fd: int) -> None:
    """Sets its environment from the typed contract, warms up, then invokes the handler back to back
    until told time is up, and reports what each invocation came to."""
    conn = Connection(fd)
    setup = conn.recv()
    from dialer_worker.env import DialerEnv
    from shared.observability import ObservabilityEnv

    os.environ.update(DialerEnv.variables(**setup["dialer"]))
    os.environ.update(ObservabilityEnv.variables(**setup["observability"]))
    os.environ.update(setup["lambda"])
    import resource

    from dialer_worker import core
    from dialer_worker.handler import handler
    from local_pipeline.lambda_context import LocalLambdaContext

    # The real handler, with each batch's report kept as it leaves the core.
    reports: list = []
    process = core.process

    def keep_report(*args, **kwargs):
        response, report = process(*args, **kwargs)
        reports.append(report)
        return response, report

    core.process = keep_report

    def invoke(event_text: str) -> float:
        context = LocalLambdaContext("dialer", timeout_seconds=setup["timeout_s"], memory_limit_in_mb=setup["memory"])
        started = time.monotonic()
        json.dumps(handler(json.loads(event_text), context))  # the runtime parses and serializes
        return (time.monotonic() - started) * 1000

    # A warm container: imports, the Redis connection, the HTTP session, the SQS client (the
    # paused task is deferred) and libphonenumber's metadata, before the clock starts.
    warm_ms = [invoke(text) for text in setup["warmup"]]
    reports.clear()
    conn.send(("ready", warm_ms))
    stop_at = conn.recv()
    # One thread dials (dispatch.py), so the main thread's CPU clock is the dialer's.
    profiler = cProfile.Profile(time.process_time) if setup.get("profile") else None
    batches = iter(setup["batches"])
    durations: list[float] = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    while time.monotonic() < stop_at:
        text = next(batches, None)
        if text is None:
            break
        if profiler:
            profiler.enable()
        durations.append(invoke(text))
        if profiler:
            profiler.disable()
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler:
        profiler.dump_stats(setup["profile"])
    counts: dict[str, int] = {}
    deferrals: dict[str, int] = {}
    for report in reports:
        for name, value in report.counts.items():
            counts[str(name)] = counts.get(str(name), 0) + value
        for reason, value in report.deferrals.items():
            deferrals[reason] = deferrals.get(reason, 0) + value
    conn.send(
        (
            "done",
            {
                "durations_ms": durations,
                "dials": [r.counts.get("DialsSent", 0) for r in reports],
                "counts": counts,
                "deferrals": deferrals,
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "ran_out_of_batches": len(durations) == len(setup["batches"]),
            },
        )
    )


# --- the harness (outside any quota) ------------------------------------------------------------
class Dialer:
    def __init__(self, group: CpuGroup | None, setup: dict, stderr) -> None:
        parent, child = socket.socketpair()
        # An environment the size of a Lambda's, not this shell's: requests scans all of it for
        # proxy settings on every POST, so its length is part of the cost per dial.
        env = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
        env |= {"PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)]), **setup["lambda"]}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(child.fileno())],
            pass_fds=[child.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the handler's JSON logs and metrics, as CloudWatch would take them
            stderr=stderr,
        )
        child.close()
        if group is not None:
            group.add(self.process.pid)  # before the interpreter has imported anything
        self.conn = Connection(parent.detach())
        self.conn.send(setup)

    def expect(self, kind: str, timeout: float):
        if not self.conn.poll(timeout):
            raise RuntimeError(f"dialer {self.process.pid}: no {kind!r} within {timeout:.0f} s")
        got, value = self.conn.recv()
        if got != kind:
            raise RuntimeError(f"dialer {self.process.pid}: {got!r} instead of {kind!r}")
        return value

    def close(self) -> None:
        self.conn.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def lambda_environment(memory_mb: int, sqs_endpoint: str) -> dict[str, str]:
    """What the Lambda runtime sets for a Python function (the function's own variables come from
    the contracts); the SQS endpoint is the local one, the credentials are fake."""
    return {
        "_HANDLER": "dialer_worker.handler.handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "dialer",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/dialer",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib",
        "TZ": ":UTC",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
    }


def build_batches(dialer_no: int, count: int, *, paused: bool = False, offset: int = 0) -> list[str]:
    """`count` events of BATCH_SIZE items as the enrichment returns them, as JSON text."""
    from local_pipeline.database import DIALABLE_CONFIG
    from local_pipeline.run import dialable_number
    from shared.dial_task import DialTask, EnrichedTask, parse_campaign_config

    config = parse_campaign_config(DIALABLE_CONFIG)
    assert config is not None
    run = uuid.uuid4().hex[:8]
    now_ms = int(time.time() * 1000)
    events = []
    for b in range(count):
        items = []
        for i in range(1 if paused else BATCH_SIZE):
            n = offset + (dialer_no * 100_000) + b * BATCH_SIZE + i
            task = DialTask("bench", f"k-{run}-{dialer_no}-{b}-{i}", dialable_number(n))
            enriched = EnrichedTask(
                message_id=f"m-{run}-{dialer_no}-{b}-{i}",
                body=json.dumps({**task.fields(), "metadata": {}}),
                task=task,
                campaign_name="bench",
                config=config,
                enriched_at="2026-12-01T00:00:00.000Z",
                message_group_id="bench",
                first_sent_ms=now_ms,
                campaign_status="paused" if paused else "active",
            )
            items.append(enriched.to_item())
        events.append(json.dumps(items))
    return events


def measure(
    memory: int | None,
    *,
    args,
    layout: dict | None,
    redis_server,
    worker,
    defer_queue_url,
    records_queue_url,
    sqs_endpoint,
    stderr,
) -> dict:
    import redis

    from dialer_worker.env import GATES_OFF
    from local_pipeline.worker_standin import rolling_window_max
    from shared.live_calls import fleet_live_key
    from shared.observability import DIALER_SERVICE
    from stacks.settings import PROD

    prefix = f"share-{uuid.uuid4().hex[:8]}"
    settings = PROD
    run_id = uuid.uuid4().hex[:6]
    # Enough for any one dialer to take the whole rate for the whole run.
    per_dialer = math.ceil(args.max_cps * (args.seconds + 5) / BATCH_SIZE) + 5
    groups: list[CpuGroup | None] = []
    dialers: list[Dialer] = []
    priced_mb = memory or MB_PER_VCPU
    try:
        for k in range(args.dialers):
            group = None
            if layout is not None:
                group = CpuGroup(f"{GROUP_PREFIX}-{run_id}-{k}", quota_us(memory), layout)
            groups.append(group)
            setup = {
                "dialer": dict(
                    host=redis_server.host,
                    port=redis_server.port,
                    tls=False,
                    key_prefix=prefix,
                    worker_url=worker.url,
                    max_cps=args.max_cps,
                    reserved_concurrency=args.dialers,
                    claim_ttl_seconds=settings.claim_ttl_seconds,
                    restore_hold_seconds=settings.restore_hold_seconds,
                    redis_quarantine_seconds=settings.redis_quarantine_seconds,
                    default_time_zone=settings.default_time_zone,
                    max_call_seconds=settings.max_call_seconds,
                    defer_queue_url=defer_queue_url,
                    call_records_queue_url=records_queue_url,
                    **GATES_OFF,
                ),
                "observability": dict(
                    service_name=DIALER_SERVICE, metrics_namespace="DialPipeline/bench", log_level=settings.log_level
                ),
                "lambda": lambda_environment(priced_mb, sqs_endpoint),
                "timeout_s": settings.dialer.timeout_seconds,
                "memory": priced_mb,
                "warmup": build_batches(k, 1, paused=True, offset=90_000) + build_batches(k, 1, offset=95_000),
                "batches": build_batches(k, per_dialer),
                "profile": args.profile,
            }
            dialers.append(Dialer(group, setup, stderr))
        warm = [d.expect("ready", 300) for d in dialers]
        worker.reset()
        baseline = [(g.usage_ns(), *g.throttling()) if g else (0, 0, 0) for g in groups]
        go_wall, go = time.time(), time.monotonic()
        for d in dialers:
            d.conn.send(go + args.seconds)
        results = [d.expect("done", args.seconds + 120) for d in dialers]
        end = [(g.usage_ns(), *g.throttling()) if g else (0, 0, 0) for g in groups]
    finally:
        for d in dialers:
            d.close()
        for g in groups:
            if g is not None:
                g.remove()
    row_load = load()

    # Arrivals at the worker, on its clocks; slots from the admission script's record in Redis.
    calls = [c for c in worker.calls if c.at_wall >= go_wall and 200 <= c.status < 300]
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    lease_us = settings.max_call_seconds * 1_000_000
    slots = {
        member.decode(): (score - lease_us) / 1e6
        for member, score in client.zrange(fleet_live_key(prefix), 0, -1, withscores=True)
    }
    client.close()
    lateness = sorted(c.at_wall - slots[c.body["callId"]] for c in calls if c.body["callId"] in slots)
    due = sorted(slots[c.body["callId"]] for c in calls if c.body["callId"] in slots)
    # The span the dials were due in: from the first slot to the end of the run (slots reserved
    # before the end may fall after it; those are left out, as is the time before the first).
    window = (due[0], go_wall + args.seconds) if due else (0.0, 0.0)
    in_window = sum(1 for t in due if window[0] <= t < window[1])
    dials = sum(sum(r["dials"]) for r in results)
    late = sum(r["deferrals"].get("late", 0) for r in results)
    cpu_ns = sum(e[0] - b[0] for b, e in zip(baseline, end, strict=True))
    periods = sum(e[1] - b[1] for b, e in zip(baseline, end, strict=True))
    throttled = sum(e[2] - b[2] for b, e in zip(baseline, end, strict=True))
    durations = [d for r in results for d in r["durations_ms"]]
    usd = sum(math.ceil(d) / 1000 * priced_mb / 1024 * ARM64_GB_SECOND_USD + REQUEST_USD for d in durations)
    other = {}
    for r in results:
        for reason, value in r["deferrals"].items():
            other[reason] = other.get(reason, 0) + value
    durations.sort()
    return {
        "memory": f"{memory} MB" if memory else "unlimited",
        "quota": f"{quota_us(memory) / CFS_PERIOD_US:.1%}" if memory else "none",
        "achieved": in_window / (window[1] - window[0]) / args.max_cps if in_window else 0.0,
        "slots": (due[0] - go_wall, due[-1] - go_wall) if due else (0.0, 0.0),
        "peak_1s": rolling_window_max([c.at_monotonic for c in calls]),
        "late_per_100": 100 * late / dials if dials else float("nan"),
        "over_10ms": sum(1 for x in lateness if x > LATE_AT_WORKER_S),
        "over_10ms_share": sum(1 for x in lateness if x > LATE_AT_WORKER_S) / len(lateness) if lateness else 0.0,
        "p99_late_ms": lateness[int(0.99 * (len(lateness) - 1))] * 1000 if lateness else float("nan"),
        "cpu_ms_per_dial": (cpu_ns / 1e6 if layout else sum(r["cpu_s"] for r in results) * 1000) / dials
        if dials
        else float("nan"),
        "throttled": f"{throttled}/{periods}",
        "usd_per_million": usd / dials * 1e6 if dials else float("nan"),
        "dials": dials,
        "worker_calls": len(calls),
        "unmatched": len(calls) - len(lateness),
        "invocations": len(durations),
        "p50_invocation_ms": durations[len(durations) // 2] if durations else float("nan"),
        "deferrals": other,
        "warm_ms": max(max(w) for w in warm),
        "ran_out": any(r["ran_out_of_batches"] for r in results),
        "load": row_load,
    }


COLUMNS = (
    ("memory", "memory", "{:>9}"),
    ("quota", "CPU", "{:>5}"),
    ("achieved", "achieved", "{:>8.1%}"),
    ("peak_1s", "peak 1s", "{:>7}"),
    ("late_per_100", "late/100", "{:>8.2f}"),
    ("over_10ms", ">10ms", "{:>5}"),
    ("over_10ms_share", ">10ms %", "{:>7.1%}"),
    ("p99_late_ms", "p99 late ms", "{:>11.1f}"),
    ("cpu_ms_per_dial", "CPU ms/dial", "{:>11.2f}"),
    ("throttled", "throttled", "{:>11}"),
    ("usd_per_million", "$/M dials", "{:>9.2f}"),
    ("dials", "dials", "{:>6}"),
    ("p50_invocation_ms", "p50 inv ms", "{:>10.0f}"),
    ("load", "load (1 5 15 min)", "{:>17}"),
)


def print_row(row: dict) -> None:
    print(" | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS), flush=True)
    notes = (
        ["deferrals " + ", ".join(f"{reason} {n}" for reason, n in row["deferrals"].items())]
        if row["deferrals"]
        else []
    )
    if row["unmatched"]:
        notes.append(f"{row['unmatched']} arrivals without a slot in Redis")
    if row["ran_out"]:
        notes.append("a dialer ran out of batches: more --seconds than batches built")
    first, last = row["slots"]
    notes.append(f"slots from +{first:.2f} s to +{last:.2f} s")
    notes.append(f"{row['invocations']} invocations, slowest warm-up {row['warm_ms']:.0f} ms")
    print("           " + "; ".join(notes), flush=True)


def print_profile(path: str, top: int = 25) -> None:
    import pstats

    stats = pstats.Stats(path)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((cumtime, tottime, calls, f"{Path(filename).name}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"\nwhere the dialer's CPU goes (cProfile, {total * 1000:.0f} ms profiled; cumulative share of it):")
    for cumtime, tottime, calls, where in rows[:top]:
        print(f"  {cumtime / total:>6.1%} cum {tottime / total:>6.1%} own {calls:>7} calls  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--dialers", type=int, default=5)
    parser.add_argument("--max-cps", type=float, default=100)
    parser.add_argument("--sizes", default="128,256,512,1024,unlimited", help="memory sizes in MB, or unlimited")
    parser.add_argument("--profile", metavar="FILE", help="one dialer on a full core under cProfile instead")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        dialer_process(args.child)
        return 0

    layout = cgroup_layout()
    if isinstance(layout, str) and not args.profile:
        print(f"bench_lambda_share: skipped: {layout} (run it as root)")
        return 0
    import signal

    from local_pipeline.services import reuse_or_start_redis
    from local_pipeline.sqs_local import LocalSqsServer
    from local_pipeline.worker_standin import WorkerStandIn

    # A kill (make's Ctrl-C, a timeout) still runs the finally blocks that remove the cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    redis_server, throwaway = reuse_or_start_redis()
    sqs = LocalSqsServer().start()
    worker = WorkerStandIn().start()
    stderr_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_lambda_share-{os.getpid()}.stderr"
    try:
        queue = sqs.create_queues(f"defer-{uuid.uuid4().hex[:6]}", max_receive_count=5, visibility_timeout_seconds=60)
        # The ledger's records queue: every batch sends its `dialed` records there, as deployed.
        records = sqs.create_queues(
            f"records-{uuid.uuid4().hex[:6]}", max_receive_count=5, visibility_timeout_seconds=60
        )
        with open(stderr_path, "w") as stderr:
            common = dict(
                args=args,
                redis_server=redis_server,
                worker=worker,
                defer_queue_url=queue.queue_url,
                records_queue_url=records.queue_url,
                sqs_endpoint=sqs.endpoint,
                stderr=stderr,
            )
            if args.profile:
                args.dialers = 1
                row = measure(None, layout=None, **common)
                print(f"one dialer, no quota, MAX_CPS {args.max_cps:.0f}, {args.seconds:.0f} s, load {row['load']}")
                print(f"CPU ms per dial under the profiler: {row['cpu_ms_per_dial']:.2f} ({row['dials']} dials)")
                print_profile(args.profile)
                return 0
            assert isinstance(layout, dict)
            remove_leftover_groups(layout)
            sizes = [None if s.strip() == "unlimited" else int(s) for s in args.sizes.split(",")]
            print(
                f"{args.dialers} dialer processes, each in a cgroup v{layout['version']} with the CPU share of its "
                f"memory (1 vCPU per {MB_PER_VCPU} MB, per {CFS_PERIOD_US // 1000} ms period), MAX_CPS "
                f"{args.max_cps:.0f} shared through Redis, {args.seconds:.0f} s per size; worker stand-in, Redis "
                f"and SQS outside the quota; {os.cpu_count()} CPUs, load {load()}"
            )
            print(" | ".join(f"{title:>{_width(fmt)}}" for _, title, fmt in COLUMNS))
            for memory in sizes:
                print_row(measure(memory, layout=layout, **common))
        return 0
    except BaseException:
        print(f"dialer processes' stderr: {stderr_path}", file=sys.stderr)
        raise
    finally:
        worker.stop()
        sqs.stop()
        if throwaway:
            throwaway.destroy()
        if stderr_path.exists() and stderr_path.stat().st_size == 0:
            stderr_path.unlink()


def _width(fmt: str) -> int:
    return int("".join(ch for ch in fmt.split(":")[1].split(".")[0] if ch.isdigit()))


if __name__ == "__main__":
    sys.exit(main())
