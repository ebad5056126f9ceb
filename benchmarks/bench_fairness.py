"""Fairness between campaigns, side by side in one run on one machine.

(a) The global rate with a campaign gate in play: a sustained mixed backlog (10% of tasks from a
    campaign capped at maxCps 5, MAX_CPS 20) dialed by 4 concurrent dialers (threads, each with
    its own Redis connection, thread pool and HTTP session, running the real Dispatcher's
    reserve-then-dial loop against the real Redis and the worker stand-in over HTTP). The
    admission script from before fairness (`old_reserve.py`) against today's. Utilization of
    MAX_CPS in the steady part of the run, peak rolling second overall and for the capped
    campaign, calls dialed twice, and the narrowest span of MAX_CPS + 1 consecutive arrivals
    (over 1 s means no rolling second over MAX_CPS; what the pacing spends of SLACK is
    1 + SLACK minus that span).
(b) A small campaign behind a big one through the local pipeline (`LocalRun`): 2,000 tasks of a
    big campaign, and once they are dialing 20 of a small one, MAX_CPS 20; when the small
    campaign's first and last calls reach the worker, in seconds after it was enqueued, with the
    local SQS's fair receives on and off. Each run stops once the small campaign is done.

Every figure block shows the machine's load average (1, 5, 15 min) when it was taken.
Run: `.venv/bin/python benchmarks/bench_fairness.py [--seconds 20] [--dialers 4] [--big 2000] [--small 20]`
(`--skip-pipeline` or `--skip-mixed` runs one half; about 3 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "DialPipeline/bench")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import redis  # noqa: E402
from old_reserve import OldRedisPacer  # noqa: E402

from dialer_worker.admission import SLACK, RedisPacer  # noqa: E402
from dialer_worker.deferral import delay_for  # noqa: E402
from dialer_worker.dispatch import Dispatcher  # noqa: E402
from dialer_worker.worker_client import WorkerClient  # noqa: E402
from local_pipeline.run import pacing_only_env  # noqa: E402
from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis  # noqa: E402
from local_pipeline.worker_standin import WorkerStandIn, rolling_window_max  # noqa: E402
from shared.dial_task import DialTask, EnrichedTask, parse_campaign_config  # noqa: E402

CONFIG = {"audioFileUrl": "s3://a.wav", "ivrFlow": {"start": "menu"}}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def min_span(times: list[float], max_cps: int) -> float:
    """The shortest time any max_cps + 1 consecutive calls took: under 1 s is a rolling second over."""
    spans = [b - a for a, b in zip(times, times[max_cps:], strict=False)]
    return min(spans) if spans else float("nan")


# --- (a) the mixed workload ---------------------------------------------------------------------
class Backlog:
    """The queue for (a): new tasks forever (every 10th from the capped campaign, shuffled by a
    fixed seed, so both scripts see the same stream), and deferred ones back after their delay."""

    def __init__(self, capped_share: float, capped_cps: float, seed: int = 11) -> None:
        self._random = random.Random(seed)
        self._capped_share = capped_share
        self._capped_cps = capped_cps
        self._n = 0
        self._due: list = []  # heap of (due monotonic, seq, item)
        self._lock = threading.Lock()
        self.items: dict[str, dict] = {}
        self.deferred = 0

    def _new(self) -> dict:
        self._n += 1
        capped = self._random.random() < self._capped_share
        campaign = "capped" if capped else "open"
        config = parse_campaign_config(dict(CONFIG, **({"maxCps": self._capped_cps} if capped else {})))
        assert config is not None
        # A dialable number: the exchange starts with 2-9.
        phone = f"+1415{2 + self._n % 8}{self._n % 10**6:06d}"
        task = EnrichedTask(f"m-{self._n}", "{}", DialTask(campaign, f"k-{self._n}", phone), campaign, config, "")
        item = task.to_item()
        self.items[item["messageId"]] = item
        return item

    def take(self, count: int) -> list[dict]:
        now = time.monotonic()
        with self._lock:
            batch = []
            while self._due and self._due[0][0] <= now and len(batch) < count:
                batch.append(heapq.heappop(self._due)[2])
            while len(batch) < count:
                batch.append(self._new())
            return batch

    def defer(self, entries) -> dict:
        """The Deferrer's interface: (task, wait ms); back as SQS DelaySeconds would."""
        now = time.monotonic()
        with self._lock:
            for task, wait_ms in entries:
                self.deferred += 1
                heapq.heappush(self._due, (now + delay_for(wait_ms), self.deferred, self.items[task.message_id]))
        return {}


def run_mixed(server, pacer_class, *, dialers: int, seconds: float, max_cps: float, capped_cps: float) -> dict:
    prefix = f"bench-fair-{uuid.uuid4().hex[:8]}"
    worker = WorkerStandIn().start()
    backlog = Backlog(0.1, capped_cps)
    stop_at = time.monotonic() + seconds
    errors: list = []

    def dialer(k: int) -> None:
        client = redis.Redis(host=server.host, port=server.port)
        config = pacing_only_env(
            host=server.host, port=server.port, key_prefix=prefix, max_cps=max_cps, worker_url=worker.url
        )
        dispatcher = Dispatcher(
            config=config,
            pacer=pacer_class(client, prefix=prefix, claim_ttl_seconds=600),
            worker=WorkerClient(worker.url),
            deferrer=backlog,
        )
        try:
            while time.monotonic() < stop_at:
                deadline = time.monotonic() + 15  # a 15 s dialer's budget: slots at most 10 s ahead
                dispatcher.run(backlog.take(10), lambda d=deadline: int((d - time.monotonic()) * 1000))
        except Exception as exc:  # shown in the table, not swallowed
            errors.append(repr(exc))
        finally:
            dispatcher.worker.close()
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=dialer, args=(k,)) for k in range(dialers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.stop()
    calls = [c for c in worker.calls if 200 <= c.status < 300]
    times = sorted(c.at_monotonic for c in calls)
    capped = sorted(c.at_monotonic for c in calls if c.body["campaignId"] == "capped")
    # Steady state: from 1 s after the start until the dialers stop taking new batches.
    window = (started + 1.0, stop_at)
    steady = sum(1 for t in times if window[0] <= t < window[1])
    n = int(max_cps)
    return {
        "dials": len(times),
        "utilization of MAX_CPS": steady / (window[1] - window[0]) / max_cps,
        "peak rolling 1 s": rolling_window_max(times),
        "capped: peak rolling 1 s": rolling_window_max(capped),
        "capped share of dials": len(capped) / max(1, len(times)),
        "dialed twice": sum(1 for v in Counter(c.body["callId"] for c in calls).values() if v > 1),
        "deferred": backlog.deferred,
        f"min span of {n + 1} calls, s": min_span(times, n),
        "errors": len(errors),
    }


# --- (b) a small campaign behind a big one, through the local pipeline ---------------------------
def run_pipeline(pg, redis_server, *, fair: bool, big: int, small: int, max_cps: float, timeout: float) -> dict:
    from dialer_worker.env import GATES_OFF
    from local_pipeline.database import throwaway_database
    from local_pipeline.run import LocalRun, dialable_number, favour_the_stand_in
    from stacks.settings import DEV

    favour_the_stand_in()  # the small campaign's wait is measured at the stand-in
    sink = io.StringIO()  # the handlers' JSON logs and metrics
    campaigns = [(c, "active", CONFIG) for c in ("big", "small")]
    with throwaway_database(pg, campaigns, prefix="bench") as dbname:
        with contextlib.redirect_stdout(sink):
            run = LocalRun(DEV, postgres=pg, dbname=dbname, redis=redis_server, max_cps=max_cps,
                           visibility_timeout_seconds=30, batching_window_seconds=0.5, dialer_overrides=GATES_OFF)  # fmt: skip
            run.sqs.queues.fair_receives = fair
            tasks = [
                {"campaignId": "big", "contactId": f"b-{i}", "phoneNumber": dialable_number(i), "attempts": 0}
                for i in range(big)
            ]
            run.enqueue(tasks)
            pipe = run.pipe().start(run.parallel)
            try:
                while not run.worker.accepted():  # the big campaign is dialing: its backlog is in flight
                    time.sleep(0.05)
                enqueued_at = time.monotonic()
                run.enqueue(
                    {
                        "campaignId": "small",
                        "contactId": f"s-{i}",
                        "phoneNumber": dialable_number(i, "650"),
                        "attempts": 0,
                    }
                    for i in range(small)
                )
                deadline = enqueued_at + timeout
                while time.monotonic() < deadline:
                    done = {c.body["contactId"] for c in run.worker.accepted() if c.body["campaignId"] == "small"}
                    if len(done) >= small:
                        break
                    time.sleep(0.2)
            finally:
                pipe.stop()
                run.close()
        accepted = run.worker.accepted()
        small_times = sorted(c.at_monotonic - enqueued_at for c in accepted if c.body["campaignId"] == "small")
        times = sorted(c.at_monotonic for c in accepted)
        return {
            "small dialed": f"{len({c.body['contactId'] for c in accepted if c.body['campaignId'] == 'small'})}/{small}",
            "small: first dial, s": small_times[0] if small_times else float("nan"),
            "small: last dial, s": small_times[-1] if small_times else float("nan"),
            "big dialed meanwhile": sum(1 for c in accepted if c.body["campaignId"] == "big"),
            "peak rolling 1 s": rolling_window_max(times),
            f"min span of {int(max_cps) + 1} calls, s": min_span(times, int(max_cps)),
            "dialed twice": sum(1 for v in Counter(c.body["callId"] for c in accepted).values() if v > 1),
        }


def table(title: str, columns: dict[str, dict]) -> None:
    names = list(columns)
    rows = list(next(iter(columns.values())))
    print(title)
    print(f"{'':<28}" + "".join(f"{n:>22}" for n in names))
    for row in rows:
        cells = []
        for n in names:
            v = columns[n][row]
            if isinstance(v, float):
                cells.append(f"{v:>22.1%}" if "utilization" in row or "share" in row else f"{v:>22.3f}")
            else:
                cells.append(f"{v!s:>22}")
        print(f"{row:<28}" + "".join(cells))
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20, help="(a) length of each run")
    parser.add_argument("--dialers", type=int, default=4, help="(a) concurrent dialers")
    parser.add_argument("--max-cps", type=float, default=20)
    parser.add_argument("--capped-cps", type=float, default=5)
    parser.add_argument("--big", type=int, default=2000, help="(b) tasks of the big campaign")
    parser.add_argument("--small", type=int, default=20, help="(b) tasks of the small campaign, enqueued after")
    parser.add_argument("--skip-mixed", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    redis_server, redis_throwaway = reuse_or_start_redis()
    pg, pg_throwaway = (None, None) if args.skip_pipeline else reuse_or_start_postgres()
    try:
        if not args.skip_mixed:
            columns = {}
            for name, pacer in (("old script", OldRedisPacer), ("this script", RedisPacer)):
                columns[name] = run_mixed(redis_server, pacer, dialers=args.dialers, seconds=args.seconds,
                                          max_cps=args.max_cps, capped_cps=args.capped_cps)  # fmt: skip
                columns[name]["load average 1/5/15 min"] = load()
            table(
                f"(a) mixed backlog: 10% capped at maxCps {args.capped_cps:g}, MAX_CPS {args.max_cps:g}, "
                f"{args.dialers} dialers, {args.seconds:g} s each, SLACK {SLACK:g} (pacing's own rate: "
                f"{1 / (1 + SLACK):.1%} of MAX_CPS)",
                columns,
            )
        if not args.skip_pipeline:
            columns = {}
            timeout = args.big / args.max_cps * 1.5 + 30
            for name, fair in (("fair receives", True), ("first in, first out", False)):
                columns[name] = run_pipeline(pg, redis_server, fair=fair, big=args.big, small=args.small,
                                             max_cps=args.max_cps, timeout=timeout)  # fmt: skip
                columns[name]["load average 1/5/15 min"] = load()
            table(
                f"(b) local pipeline: {args.small} tasks of a small campaign enqueued after {args.big} of a big one, "
                f"MAX_CPS {args.max_cps:g}; seconds after the small campaign was enqueued",
                columns,
            )
    finally:
        for throwaway in (redis_throwaway, pg_throwaway):
            if throwaway:
                throwaway.destroy()


if __name__ == "__main__":
    main()
