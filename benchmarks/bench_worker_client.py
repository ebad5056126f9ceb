"""CPU per POST /dial on the dialer's side: requests.Session (the client before) against
WorkerClient (urllib3's connection pool), both against the worker stand-in in its own process.

The client's process CPU (time.process_time) per call is what counts at Lambda's CPU share; the
environment is trimmed to a Lambda's size first, since requests scans it for proxies per call.
Run: `.venv/bin/python benchmarks/bench_worker_client.py [--calls 2000]`
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]


def command(n: int) -> dict:
    return {
        "callId": f"bench-{os.getpid()}-{n}",
        "campaignId": "bench",
        "contactId": f"c-{n}",
        "phoneNumber": "+15550100000",
        "audioFileUrl": "s3://bench/audio.wav",
        "ivrFlow": "default",
    }


def cpu_ms_per_call(post, calls: int, offset: int) -> float:
    for n in range(50):  # connections open, code warm
        post(command(offset - 1000 + n))
    started = time.process_time()
    for n in range(calls):
        post(command(offset + n))
    return (time.process_time() - started) * 1000 / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    import requests

    from dialer_worker.worker_client import WorkerClient
    from local_pipeline.worker_standin import WorkerStandIn

    for name in list(os.environ):  # about a Lambda's 25 variables
        if name not in ("PATH", "LANG", "HOME", "PYTHONPATH"):
            del os.environ[name]
    os.environ.update({f"AWS_LAMBDA_VAR_{i}": "x" * 40 for i in range(20)})
    worker = WorkerStandIn().start()
    try:
        session = requests.Session()
        url = worker.url + "/dial"

        def with_requests(body: dict) -> None:
            session.post(url, json=body, headers={"Idempotency-Key": body["callId"]}, timeout=(1.0, 3.0))

        client = WorkerClient(worker.url)

        def with_urllib3(body: dict) -> None:
            client.dial(body, connect_timeout=1.0, read_timeout=3.0)

        before = cpu_ms_per_call(with_requests, args.calls, 1_000_000)
        after = cpu_ms_per_call(with_urllib3, args.calls, 2_000_000)
        print(f"CPU ms per POST /dial ({args.calls} calls each, load {os.getloadavg()[0]:.2f}):")
        print(f"  requests.Session.post   {before:.3f}")
        print(f"  WorkerClient (urllib3)  {after:.3f}   ({after / before:.0%} of before)")
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
