"""CPU per POST /dial on the dialer's side: requests.Session, urllib3's connection pool and
http.client's keep-alive connection (the clients before) against WorkerClient (plain sockets, the
request in one write, the reply's head read by hand), all against the worker stand-in in its own
process.

The client's process CPU (time.process_time) per call is what counts at Lambda's CPU share; the
environment is trimmed to a Lambda's size first, since requests scans it for proxies per call.
Run: `.venv/bin/python benchmarks/bench_worker_client.py [--calls 2000] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import requests
    import urllib3

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

        pool = urllib3.connection_from_url(worker.url, maxsize=10, block=False, retries=False)

        def with_urllib3(body: dict) -> None:
            pool.urlopen(
                "POST",
                "/dial",
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Idempotency-Key": body["callId"]},
                timeout=urllib3.Timeout(connect=1.0, read=3.0),
                retries=False,
                redirect=False,
            )

        host, port = worker.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=3.0)

        def with_http_client(body: dict) -> None:
            headers = {"Content-Type": "application/json", "Idempotency-Key": body["callId"]}
            connection.request("POST", "/dial", body=json.dumps(body).encode(), headers=headers)
            connection.getresponse().read()

        client = WorkerClient(worker.url)

        def with_worker_client(body: dict) -> None:
            client.dial(body, connect_timeout=1.0, read_timeout=3.0)

        # Interleaved rounds, so a change in the machine's load falls on all of them alike.
        clients = {
            "requests.Session.post": with_requests,
            "urllib3 connection pool": with_urllib3,
            "http.client keep-alive": with_http_client,
            "WorkerClient (sockets)": with_worker_client,
        }
        per_call: dict[str, list[float]] = {name: [] for name in clients}
        for round_no in range(args.rounds):
            for k, (name, post) in enumerate(clients.items()):
                per_call[name].append(cpu_ms_per_call(post, args.calls, (round_no * 10 + k + 1) * 1_000_000))
        print(f"CPU ms per POST /dial (median of {args.rounds} rounds of {args.calls} calls, load {load()}):")
        baseline = statistics.median(per_call["requests.Session.post"])
        for name, figures in per_call.items():
            median = statistics.median(figures)
            print(f"  {name:28} {median:.3f}   ({median / baseline:.0%} of requests)")
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
