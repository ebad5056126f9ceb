"""A stand-in for the Node.js worker: accepts POST /dial, records every call, answers as told.

    worker = WorkerStandIn().start()          # a free port on 127.0.0.1
    worker.script(500, 500)                   # the next two calls get 500, then normal
    worker.set_shares({429: 0.2})             # afterwards 20% of calls get 429
    worker.latency_s = 0.05                   # every answer waits 50 ms
    ... NODE_WORKER_URL = worker.url ...
    worker.calls                              # [Call(at_monotonic, at_wall, body, idempotency_key, status)]
    GET {worker.url}/stats                    # calls of the last minute, per campaign (dialctl status)
    worker.report_to(sqs_client, queue_url)   # one call event per accepted call when it "ends"
    worker.answer_rates = {"c-1": 0.2}        # share answered (or machine) per campaign
    worker.duration_s = lambda rng: rng.uniform(0.5, 2.0)   # how long each accepted call lasts
    worker.peak_live                          # the most live calls at once, per campaign and "*"
    worker.stop()

Like the real worker it answers 409 to an Idempotency-Key it has already accepted. A call is live
at the stand-in from its 2xx until it sends the call's event.
`python -m local_pipeline.worker_standin --port 3000` runs it on its own.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # a scripted "status": never answer within any client's timeout
# Unanswered calls end as one of these, at random.
NOT_ANSWERED = ("no_answer", "busy")
FLEET = "*"


@dataclass(frozen=True)
class Call:
    at_monotonic: float
    at_wall: float
    body: dict
    idempotency_key: str | None
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
        self._server: ThreadingHTTPServer | None = None
        # Call events: where to send them (report_to), how calls turn out and how long they last.
        self.answer_rates: dict[str, float] = {}
        self.default_answer_rate = 0.6
        self.duration_s: Callable[[random.Random], float] = lambda rng: rng.uniform(0.5, 2.0)
        self._events_client: Any = None
        self._events_queue_url: str | None = None
        self._ending: list[tuple[float, str, str, float]] = []  # heap of (ends at, callId, campaignId, duration)
        self._wake = threading.Condition(self._lock)
        self._live: dict[str, int] = {}
        self.peak_live: dict[str, int] = {}
        self.events_sent = 0
        self.live_samples: list[tuple[float, dict[str, int]]] = []
        self._ender: threading.Thread | None = None
        self._stopping = False

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

    def report_to(self, client: Any, queue_url: str) -> None:
        """Send one call event per accepted call to `queue_url` when the call ends."""
        with self._lock:
            self._events_client, self._events_queue_url = client, queue_url
        if self._ender is None:
            self._ender = threading.Thread(target=self._end_calls, name="worker-standin-calls", daemon=True)
            self._ender.start()

    def live(self, campaign: str = FLEET) -> int:
        with self._lock:
            return self._live.get(campaign, 0)

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
            self.peak_live.clear()
            self.live_samples.clear()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> WorkerStandIn:
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
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- behaviour -------------------------------------------------------------------------
    def _decide(self, key: str | None) -> int:
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
            if 200 <= call.status < 300 and self._events_queue_url:
                campaign = str(call.body.get("campaignId"))
                duration = max(0.0, self.duration_s(self._random))
                heapq.heappush(
                    self._ending, (call.at_monotonic + duration, str(call.body.get("callId")), campaign, duration)
                )
                for key in (campaign, FLEET):
                    self._live[key] = self._live.get(key, 0) + 1
                    self.peak_live[key] = max(self.peak_live.get(key, 0), self._live[key])
                self.live_samples.append((call.at_monotonic, dict(self._live)))
                self._wake.notify_all()

    def _outcome(self, campaign: str) -> str:
        rate = self.answer_rates.get(campaign, self.default_answer_rate)
        if self._random.random() < rate:
            return "answered"
        return self._random.choice(NOT_ANSWERED)

    def _end_calls(self) -> None:
        """Ends calls when their time comes: the call event first, then it is no longer live, so
        the stand-in's live count is never below the dialer's (which drops after the event)."""
        while True:
            with self._lock:
                while not self._stopping and (not self._ending or self._ending[0][0] > time.monotonic()):
                    timeout = None if not self._ending else max(0.0, self._ending[0][0] - time.monotonic())
                    self._wake.wait(timeout=timeout if timeout is not None else 0.5)
                if self._stopping:
                    return
                now = time.monotonic()
                due: list[tuple[str, str, str, float]] = []
                while self._ending and self._ending[0][0] <= now and len(due) < 10:
                    _, call_id, campaign, duration = heapq.heappop(self._ending)
                    due.append((call_id, campaign, self._outcome(campaign), duration))
                client, url = self._events_client, self._events_queue_url
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(
                        {
                            "callId": call_id,
                            "campaignId": campaign,
                            "outcome": outcome,
                            "endedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                            "durationSeconds": round(duration, 3),
                        }
                    ),
                }
                for i, (call_id, campaign, outcome, duration) in enumerate(due)
            ]
            try:
                client.send_message_batch(QueueUrl=url, Entries=entries)
            except Exception:  # the local SQS is gone (the run is closing): the calls still end
                pass
            with self._lock:
                self.events_sent += len(due)
                for _, campaign, _, _ in due:
                    for key in (campaign, FLEET):
                        self._live[key] -= 1
                self.live_samples.append((time.monotonic(), dict(self._live)))


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
