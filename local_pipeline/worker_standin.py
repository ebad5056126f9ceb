"""A stand-in for the Node.js worker: accepts POST /dial, records every call, answers as told.

    worker = WorkerStandIn().start()          # its own process, a free port on 127.0.0.1
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

The server runs in a child process (`StandInServer`), so arrival times are taken where a carrier
would see them, not in an interpreter shared with the dialers; `WorkerStandIn` is its handle in
the caller's process, talking to it over a socket pair. A call's arrival is when its request's
first bytes reached the stand-in's socket, as the kernel stamped them (Linux's SO_TIMESTAMPNS),
not when the stand-in's interpreter got round to reading it: on a busy machine that is
milliseconds later and several requests at once, which crowds a rolling second that the dialers
did not crowd. (Elsewhere, or when the kernel gives no stamp, it is when the request was read.)
`time.monotonic()` is CLOCK_MONOTONIC, one clock for every process on Linux, so `at_monotonic`
compares with the caller's own times. Its listen backlog is Node's (511), not socketserver's 5.
`python -m local_pipeline.worker_standin --port 3000` runs the server on its own.
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

from local_pipeline.services import ask_child, end_child, serve_child, start_child, tell_child_to_stop

HANG = -1  # a scripted "status": never answer within any client's timeout
# Unanswered calls end as one of these, at random.
NOT_ANSWERED = ("no_answer", "busy")
FLEET = "*"
# How long start() waits for the child to listen, and stop() for it to exit before killing it.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
# How often the server's loop looks whether it is asked to stop.
SHUTDOWN_POLL_S = 0.05
# Settings the caller may assign as attributes; they are kept here and sent to the child.
_SETTINGS = ("latency_s", "hang_seconds", "answer_rates", "default_answer_rate")


@dataclass(frozen=True)
class Call:
    at_monotonic: float
    at_wall: float
    body: dict
    idempotency_key: str | None
    status: int


# --- how long a call lasts: a distribution the child can draw from ----------------------------
class _Probe:
    """Passed once to a `duration_s` callable to learn which draw of random.Random it makes."""

    def __init__(self) -> None:
        self.drawn: list[tuple[str, tuple]] = []
        self.value = float("nan")  # a distinct object: the callable must return the draw itself

    def __getattr__(self, name: str) -> Callable[..., float]:
        if name.startswith("_") or not callable(getattr(random.Random, name, None)):
            raise AttributeError(name)

        def draw(*args: Any) -> float:
            self.drawn.append((name, args))
            return self.value

        return draw


def duration_spec(duration: Callable[[random.Random], float] | float) -> tuple[str, tuple]:
    """A call duration the child process can draw: a constant, or a callable that returns one draw
    of the random.Random it is given (`lambda rng: rng.uniform(0.5, 2.0)`): a lambda cannot cross
    to another process, the draw it makes can."""
    if isinstance(duration, int | float):
        return ("constant", (float(duration),))
    probe = _Probe()
    try:
        result = duration(probe)  # type: ignore[arg-type]
    except AttributeError as exc:
        raise TypeError(f"duration_s may only draw from random.Random: {exc}") from None
    if len(probe.drawn) != 1 or result is not probe.value:
        raise TypeError("duration_s must return one draw of the random.Random it is given, as it is")
    return probe.drawn[0]


def _draw(spec: tuple[str, tuple], rng: random.Random) -> float:
    name, args = spec
    return float(args[0]) if name == "constant" else float(getattr(rng, name)(*args))


# --- the server (in the child process) --------------------------------------------------------
# The kernel's receive time of a read's first byte (SO_TIMESTAMPNS, Linux's value of it, which
# Python's socket module does not name): a cmsg of struct timespec, two 64-bit integers.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" and struct.calcsize("q") == struct.calcsize("l") == 8 else None
_STAMP_SPACE = socket.CMSG_SPACE(16) if _SO_TIMESTAMPNS else 0


class _StampedReader(io.RawIOBase):
    """A connection's reads, keeping the kernel's receive time of the first read after
    `next_request()` (wall clock; None when the kernel gave none for that read)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._first_read = True
        self.first_wall: float | None = None

    def next_request(self) -> None:
        self._first_read, self.first_wall = True, None

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def readinto(self, buffer) -> int:
        n, ancillary, _, _ = self._sock.recvmsg_into([buffer], _STAMP_SPACE)
        if self._first_read:
            self._first_read = False
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", data[:16])
                    self.first_wall = seconds + nanoseconds / 1e9
        return n


class _Listener(ThreadingHTTPServer):
    # Node's http server listens with a backlog of 511; socketserver's default of 5 drops the SYN
    # of a dialer's new connection whenever six arrive while this interpreter is busy elsewhere,
    # and the dialer's 1 s connect timeout then ends the call as undelivered.
    request_queue_size = 511

    def server_bind(self) -> None:
        if _SO_TIMESTAMPNS:
            # Set on the listener, so every connection has it from its first byte, even one
            # that came before the connection was accepted.
            self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        super().server_bind()


class StandInServer:
    """The HTTP server and the calls' lives; runs in the stand-in's own process."""

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
        self.duration: tuple[str, tuple] = ("uniform", (0.5, 2.0))
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
        # Bumped by reset(): the caller's copy of calls and samples starts again.
        self.generation = 0

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

    def since(self, generation: int, calls_seen: int, samples_seen: int) -> tuple[int, list[tuple], list[tuple]]:
        """Calls and live samples after the first ones the caller has (all after a reset)."""
        with self._lock:
            if generation != self.generation:
                calls_seen = samples_seen = 0
            calls = [(c.at_monotonic, c.at_wall, c.body, c.idempotency_key, c.status) for c in self.calls[calls_seen:]]
            return self.generation, calls, list(self.live_samples[samples_seen:])

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
            self.generation += 1

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandInServer:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the dialer's Session expects
            # As Node's http server does by default; without it every reply's body waits ~40 ms
            # for the dialer's delayed ACK, and the stand-in, not the pacing, sets the pace.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                if _SO_TIMESTAMPNS:
                    # Arrival times from the kernel: when the request reached this socket, not
                    # when this interpreter got round to it (on a busy machine, milliseconds
                    # later, and several requests at once).
                    self.rfile = io.BufferedReader(_StampedReader(self.connection))

            def handle_one_request(self):
                raw = getattr(self.rfile, "raw", None)
                if isinstance(raw, _StampedReader):
                    raw.next_request()  # no client here sends a request before its answer
                super().handle_one_request()

            def _arrived(self) -> tuple[float, float]:
                """When this request's first bytes reached the socket: (monotonic, wall)."""
                monotonic, wall = time.monotonic(), time.time()
                raw = getattr(self.rfile, "raw", None)
                stamped = raw.first_wall if isinstance(raw, _StampedReader) else None
                if stamped is None or not wall - 60 < stamped <= wall:
                    return monotonic, wall
                return monotonic - (wall - stamped), stamped

            def do_GET(self):
                # What `dialctl status` shows locally: calls of the last minute, per campaign.
                if self.path != "/stats":
                    return self._reply(404, {"error": "not found"})
                self._reply(200, standin.stats())

            def do_POST(self):
                arrived, wall = self._arrived()
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

        self._server = _Listener(("127.0.0.1", self._requested_port), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stop() (shutdown) waits for the loop to look, 0.5 s by default.
        thread = threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name="worker-standin")
        thread.daemon = True
        thread.start()
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
                duration = max(0.0, _draw(self.duration, self._random))
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


def _sqs_client(endpoint_url: str | None, region: str | None, credentials: tuple | None) -> Any:
    """The stand-in's SQS client: for a plain-HTTP endpoint on this machine (the local SQS's,
    moto's), SQS's JSON protocol without boto3, whose cost per send would be the stand-in's
    largest; for any other, boto3 with the credentials given."""
    if endpoint_url and endpoint_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        from local_pipeline.sqs_local import WireClient

        return WireClient(endpoint_url)
    import boto3  # only a stand-in that sends call events to a real endpoint needs it

    access_key, secret_key, token = credentials or (None, None, None)
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
    )


def _serve(fd: int, port: int, seed: int) -> None:
    """The child: the server, and what the parent asks of it (services.serve_child)."""
    serve_child(fd, lambda: StandInServer(port, seed=seed).start(), _answer)


def _answer(server: StandInServer, op: str, args: tuple) -> Any:
    if op == "set":
        name, value = args
        if name == "duration":
            with server._lock:
                server.duration = value
        else:
            setattr(server, name, value)
        return None
    if op == "get":
        result = getattr(server, args[0])
        with server._lock:
            return dict(result) if isinstance(result, dict) else result
    if op == "report_to":
        endpoint_url, queue_url, region, credentials = args
        server.report_to(_sqs_client(endpoint_url, region, credentials), queue_url)
        return None
    return getattr(server, op)(*args)


# --- the handle (in the caller's process) -----------------------------------------------------
class WorkerStandIn:
    """The stand-in as its callers use it; the server itself runs in a child process."""

    def __init__(self, port: int = 0, *, seed: int = 7, hang_seconds: float = 30.0) -> None:
        self._requested_port = port
        self._seed = seed
        self._rpc_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._port: int | None = None
        # Kept here and sent to each child started: settings assigned before start() count too.
        self._settings: dict[str, Any] = {
            "latency_s": 0.0,
            "hang_seconds": hang_seconds,
            "answer_rates": {},
            "default_answer_rate": 0.6,
        }
        self._duration: Callable[[random.Random], float] | float = lambda rng: rng.uniform(0.5, 2.0)
        self._duration_spec = duration_spec(self._duration)
        self._events: tuple | None = None
        # The calls and live samples copied from the child so far (a restarted child adds to them).
        self._calls: list[Call] = []
        self._samples: list[tuple[float, dict[str, int]]] = []
        self._generation = 0
        self._calls_seen = 0
        self._samples_seen = 0

    def __getattr__(self, name: str) -> Any:
        if name in _SETTINGS:
            return self.__dict__["_settings"][name]
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SETTINGS:
            self._settings[name] = value
            self._ask("set", name, value, only_if_running=True)
        elif name == "duration_s":
            spec = duration_spec(value)
            self.__dict__["_duration"], self.__dict__["_duration_spec"] = value, spec
            self._ask("set", "duration", spec, only_if_running=True)
        else:
            super().__setattr__(name, value)

    @property
    def duration_s(self) -> Callable[[random.Random], float] | float:
        return self._duration

    # --- the child -------------------------------------------------------------------------
    def start(self) -> WorkerStandIn:
        code = "import sys; from local_pipeline.worker_standin import _serve; _serve(*map(int, sys.argv[1:]))"
        self._process, self._conn, port = start_child(
            code, str(self._requested_port), str(self._seed), what="worker stand-in", timeout_s=START_TIMEOUT_S
        )
        self._port = int(port)
        self._calls_seen = self._samples_seen = 0
        for name, setting in self._settings.items():
            self._ask("set", name, setting)
        self._ask("set", "duration", self._duration_spec)
        if self._events is not None:
            self._ask("report_to", *self._events)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self._sync()  # the calls stay readable after stop(), as they always were
        except (EOFError, OSError):
            pass  # the child is gone already
        with self._rpc_lock:
            assert self._conn is not None
            tell_child_to_stop(self._conn, STOP_TIMEOUT_S)
        self._kill()

    def _kill(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            end_child(self._process, timeout_s=STOP_TIMEOUT_S)
            self._process = None
        self._port = None

    @property
    def pid(self) -> int | None:
        """The server's process (None when stopped)."""
        return self._process.pid if self._process is not None else None

    def _ask(self, op: str, *args: Any, only_if_running: bool = False) -> Any:
        with self._rpc_lock:
            if self._conn is None:
                if only_if_running:
                    return None
                raise RuntimeError("worker stand-in not running: start() first")
            return ask_child(self._conn, op, args)

    def _sync(self) -> None:
        """Copies the calls and live samples the child has recorded since the last copy."""
        with self._sync_lock:
            if self._conn is None:
                return
            generation, calls, samples = self._ask("since", self._generation, self._calls_seen, self._samples_seen)
            self._generation = generation
            self._calls += [Call(*c) for c in calls]
            self._samples += samples
            self._calls_seen += len(calls)
            self._samples_seen += len(samples)

    # --- control -------------------------------------------------------------------------
    def script(self, *statuses: int) -> None:
        """The next calls get these statuses, in order (HANG to not answer)."""
        self._ask("script", *statuses)

    def set_shares(self, shares: dict[int, float]) -> None:
        """After the script: each call gets status S with probability shares[S], else 202."""
        self._ask("set_shares", dict(shares))

    def report_to(
        self,
        client: Any = None,
        queue_url: str | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        """Send one call event per accepted call to `queue_url` when the call ends. The child
        builds its own SQS client: from `endpoint_url` and `region`, or from those of the boto3
        `client` given (and its credentials)."""
        if queue_url is None:
            raise TypeError("report_to needs the queue URL")
        credentials = None
        if client is not None:
            endpoint_url = endpoint_url or client.meta.endpoint_url
            region = region or client.meta.region_name
            found = client._request_signer._credentials
            if found is not None:
                frozen = found.get_frozen_credentials()
                credentials = (frozen.access_key, frozen.secret_key, frozen.token)
        self._events = (endpoint_url, queue_url, region, credentials)
        self._ask("report_to", *self._events, only_if_running=True)

    def live(self, campaign: str = FLEET) -> int:
        return self._ask("live", campaign)

    @property
    def calls(self) -> list[Call]:
        self._sync()
        return list(self._calls)

    @property
    def live_samples(self) -> list[tuple[float, dict[str, int]]]:
        self._sync()
        return list(self._samples)

    def accepted(self) -> list[Call]:
        return [c for c in self.calls if 200 <= c.status < 300]

    @property
    def peak_live(self) -> dict[str, int]:
        return self._ask("get", "peak_live")

    @property
    def events_sent(self) -> int:
        return self._ask("get", "events_sent")

    def stats(self, window_s: float = 60.0) -> dict:
        """Calls that arrived in the last `window_s` seconds, per campaign, and in all."""
        return self._ask("stats", window_s)

    def reset(self) -> None:
        with self._sync_lock:
            self._ask("reset")
            self._settings["latency_s"] = 0.0
            self._calls.clear()
            self._samples.clear()
            self._calls_seen = self._samples_seen = 0

    @property
    def url(self) -> str:
        assert self._port is not None, "start() first"
        return f"http://127.0.0.1:{self._port}"


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
    server = StandInServer(args.port).start()  # this process is the stand-in's own already
    print(f"worker stand-in on {server.url}/dial (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
