"""Fleet-wide pacing under load: this design's GCRA script against the seed's GET-then-INCR counter.

50 concurrent workers (threads, each with its own Redis connection) dial for 10 s at MAX_CPS=100
against the local Redis. Dial times are taken where the call would leave for the worker.
Run: `.venv/bin/python benchmarks/bench_pacing.py [--workers 50] [--seconds 10] [--max-cps 100]`
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import redis

from dialer_worker.admission import RedisPacer
from dialer_worker.deferral import Deferrer
from dialer_worker.dispatch import Dispatcher
from dialer_worker.worker_client import Outcome
from local_pipeline.database import DIALABLE_CONFIG
from local_pipeline.run import pacing_only_env  # noqa: E402
from local_pipeline.services import reuse_or_start_redis
from local_pipeline.worker_standin import rolling_window_max
from shared.dial_task import DialTask, EnrichedTask, parse_campaign_config


class RecordingWorker:
    """Where the HTTP POST would go: records when each call leaves and accepts it."""

    def __init__(self):
        self.times: list[float] = []
        self._lock = threading.Lock()

    def send(self, command, *, connect_timeout, read_timeout, on_time):
        if not on_time():
            return None
        now = time.monotonic()
        with self._lock:
            self.times.append(now)
        return self

    def reply(self):
        return Outcome.ACCEPTED, 202

    def close(self):
        pass


class CountingRedis(redis.Redis):
    """Counts round trips: every command or script call the pacing code sends."""

    round_trips = 0
    _lock = threading.Lock()

    def execute_command(self, *args, **kwargs):
        with CountingRedis._lock:
            CountingRedis.round_trips += 1
        return super().execute_command(*args, **kwargs)


def batch(worker_no: int, n: int) -> list[dict]:
    config = parse_campaign_config(DIALABLE_CONFIG)
    assert config is not None
    return [
        EnrichedTask(
            message_id=f"m-{worker_no}-{n}-{i}",
            body="{}",
            task=DialTask("bench", f"k-{worker_no}-{n}-{i}-{uuid.uuid4().hex[:6]}", "+14155550100"),
            campaign_name="bench",
            config=config,
            enriched_at="",
        ).to_item()
        for i in range(10)
    ]


def run_gcra(server, workers: int, seconds: float, max_cps: float) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    recorder = RecordingWorker()
    CountingRedis.round_trips = 0
    stop_at = time.monotonic() + seconds
    deferred = [0]

    def worker(k: int) -> None:
        client = CountingRedis(host=server.host, port=server.port)
        config = pacing_only_env(
            host=server.host, port=server.port, key_prefix=prefix, max_cps=max_cps, worker_url="http://unused"
        )
        dispatcher = Dispatcher(
            config=config,
            pacer=RedisPacer(client, prefix=prefix, claim_ttl_seconds=600),
            worker=recorder,
            deferrer=Deferrer(None, lambda: None),
        )
        n = 0
        while time.monotonic() < stop_at:
            # A budget like a 15 s dialer's: slots at most 10 s ahead, the rest deferred.
            deadline = time.monotonic() + 15
            report = dispatcher.run(batch(k, n), lambda d=deadline: int((d - time.monotonic()) * 1000))
            deferred[0] += len(report.failures)
            n += 1
        dispatcher.worker.close()
        client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize("GCRA script (this design)", recorder.times, CountingRedis.round_trips, deferred[0])


def run_seed(server, workers: int, seconds: float, max_cps: float) -> dict:
    """The seed: GET cps:{second}; below MAX -> INCR (TTL 1 s) and dial, else reject the task."""
    prefix = f"bench-seed-{uuid.uuid4().hex[:8]}"
    times: list[float] = []
    lock = threading.Lock()
    CountingRedis.round_trips = 0
    stop_at = time.monotonic() + seconds
    rejected = [0]

    def worker(k: int) -> None:
        client = CountingRedis(host=server.host, port=server.port)
        while time.monotonic() < stop_at:
            for _ in range(10):
                key = f"{prefix}:cps:{int(time.time())}"
                count = int(client.get(key) or 0)
                if count < max_cps:
                    pipe = client.pipeline(transaction=False)
                    pipe.incr(key)
                    pipe.expire(key, 1)
                    pipe.execute()
                    with lock:
                        times.append(time.monotonic())
                else:
                    rejected[0] += 1
                    # The seed throws and the batch comes back later; here: try again shortly.
                    time.sleep(0.05)
        client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize("seed GET+INCR per second", times, CountingRedis.round_trips, rejected[0])


def summarize(name: str, times: list[float], round_trips: int, not_dialed: int) -> dict:
    times.sort()
    gaps = sorted((b - a) * 1000 for a, b in zip(times, times[1:], strict=False))
    return {
        "algorithm": name,
        "dials": len(times),
        "max rolling 1 s": rolling_window_max(times),
        "mean CPS": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
        "p50 gap ms": statistics.median(gaps) if gaps else 0.0,
        "p99 gap ms": gaps[int(len(gaps) * 0.99)] if gaps else 0.0,
        "round trips/dial": round_trips / max(1, len(times)),
        "not dialed": not_dialed,  # GCRA: sent back as late; seed: rejected attempts
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-cps", type=float, default=100)
    args = parser.parse_args()
    server, throwaway = reuse_or_start_redis()
    try:
        rows = [
            run_gcra(server, args.workers, args.seconds, args.max_cps),
            run_seed(server, args.workers, args.seconds, args.max_cps),
        ]
    finally:
        if throwaway:
            throwaway.destroy()
    print(
        f"pacing: {args.workers} concurrent workers, {args.seconds:.0f} s, MAX_CPS={args.max_cps:.0f}, ideal gap {1000 / args.max_cps:.1f} ms"
    )
    cols = list(rows[0])
    print(" | ".join(f"{c:>16}" if i else f"{c:<26}" for i, c in enumerate(cols)))
    for row in rows:
        cells = []
        for i, c in enumerate(cols):
            v = row[c]
            cells.append(f"{v:<26}" if i == 0 else (f"{v:>16.2f}" if isinstance(v, float) else f"{v:>16}"))
        print(" | ".join(cells))
    gcra, seed = rows
    print(
        f"seed overshoot: its busiest rolling second had {seed['max rolling 1 s']} calls "
        f"({seed['max rolling 1 s'] / args.max_cps:.2f} x MAX_CPS); this design's {gcra['max rolling 1 s']} "
        f"({gcra['mean CPS'] / args.max_cps:.1%} of MAX_CPS achieved)"
    )


if __name__ == "__main__":
    main()
