"""A stand-in for the Node.js worker: accepts POST /dial, records every call, answers as told.

    worker = WorkerStandIn().start()          # a free port on 127.0.0.1
    worker.script(500, 500)                   # the next two calls get 500, then normal
    worker.set_shares({429: 0.2})             # afterwards 20% of calls get 429
    worker.latency_s = 0.05                   # every answer waits 50 ms
    ... NODE_WORKER_URL = worker.url ...
    worker.calls                              # [Call(at_monotonic, at_wall, body, idempotency_key, status)]
    GET {worker.url}/stats                    # calls of the last minute, per campaign (dialctl status)
    worker.stop()

Like the real worker it answers 409 to an Idempotency-Key it has already accepted.
`python -m local_pipeline.worker_standin --port 3000` runs it on its own.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

HANG = -1  # a scripted "status": never answer within any client's timeout


@dataclass(frozen=True)
class Call:
    at_monotonic: float
    at_wall: float
    body: dict
    idempotency_key: Optional[str]
    status: int


class WorkerStandIn:
    def __init__(self, port: int = 0, *, seed: int = 7, hang_seconds: float = 30.0) -> None:
        self._requested_port = port
        self._lock = threading.Lock()
        self._script: deque[int] = deque()
        self._shares: dict[int, float] = {}
        self._random = random.Random(seed)
        self._accepted_keys: set[str] = set()
        self.calls: list[Call] = []
        self.latency_s = 0.0
        self.hang_seconds = hang_seconds
        self._server: Optional[ThreadingHTTPServer] = None

    # --- control -------------------------------------------------------------------------
    def script(self, *statuses: int) -> None:
        """The next calls get these statuses, in order (HANG to not answer)."""
        with self._lock:
            self._script.extend(statuses)

    def set_shares(self, shares: dict[int, float]) -> None:
        """After the script: each call gets status S with probability shares[S], else 202."""
        if sum(shares.values()) > 1:
            raise ValueError("shares add up to more than 1")
        with self._lock:
            self._shares = dict(shares)

    def accepted(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if 200 <= c.status < 300]

    def stats(self, window_s: float = 60.0) -> dict:
        """Calls that arrived in the last `window_s` seconds, per campaign, and in all."""
        since = time.monotonic() - window_s
        with self._lock:
            recent = [c for c in self.calls if c.at_monotonic >= since]
            total = len(self.calls)
        by_campaign: dict[str, int] = {}
        for call in recent:
            campaign = str(call.body.get("campaignId"))
            by_campaign[campaign] = by_campaign.get(campaign, 0) + 1
        return {"windowSeconds": window_s, "callsByCampaign": by_campaign, "calls": len(recent), "callsTotal": total}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._script.clear()
            self._shares = {}
            self._accepted_keys.clear()
            self.latency_s = 0.0

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "WorkerStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the dialer's Session expects
            # As Node's http server does by default; without it every reply's body waits ~40 ms
            # for the dialer's delayed ACK, and the stand-in, not the pacing, sets the pace.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                # What `dialctl status` shows locally: calls of the last minute, per campaign.
                if self.path != "/stats":
                    return self._reply(404, {"error": "not found"})
                self._reply(200, standin.stats())

            def do_POST(self):
                arrived, wall = time.monotonic(), time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/dial":
                    return self._reply(404, {"error": "not found"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._reply(400, {"error": "body is not JSON"})
                key = self.headers.get("Idempotency-Key")
                status = standin._decide(key)
                standin._record(Call(arrived, wall, body, key, status))
                if status == HANG:
                    time.sleep(standin.hang_seconds)
                    return self._reply(504, {"error": "hung"})
                if standin.latency_s:
                    time.sleep(standin.latency_s)
                self._reply(status, {"callId": body.get("callId"), "status": status})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a hang test)

        self._server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="worker-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- behaviour -------------------------------------------------------------------------
    def _decide(self, key: Optional[str]) -> int:
        with self._lock:
            if key and key in self._accepted_keys:
                return 409
            if self._script:
                status = self._script.popleft()
            else:
                status, roll, cumulative = 202, self._random.random(), 0.0
                for candidate, share in self._shares.items():
                    cumulative += share
                    if roll < cumulative:
                        status = candidate
                        break
            if 200 <= status < 300 and key:
                self._accepted_keys.add(key)
            return status

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def rolling_window_max(times: list[float], window: float = 1.0) -> int:
    """The most calls in any half-open window [t, t + window) of the given arrival times."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in for the Node.js dial worker")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    worker = WorkerStandIn(args.port).start()
    print(f"worker stand-in on {worker.url}/dial (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        worker.stop()


if __name__ == "__main__":
    main()
