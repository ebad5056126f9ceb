"""POST /dial to the Node.js worker, and what its reply means for the task."""

from __future__ import annotations

import enum
import http.client
import json
import select
import ssl
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # 2xx
    ALREADY_ACCEPTED = "already_accepted"  # 409: an earlier attempt got through
    OVERLOADED = "overloaded"  # 429 / 503: not taken; retry later and slow down
    REJECTED = "rejected"  # any other 4xx: never will be taken
    FAILED = "failed"  # other 5xx: not taken; retry
    UNDELIVERED = "undelivered"  # never reached the worker (refused, connect timeout)
    AMBIGUOUS = "ambiguous"  # sent, no answer: the worker may have taken it

    @property
    def delivered(self) -> bool:
        return self in (Outcome.ACCEPTED, Outcome.ALREADY_ACCEPTED)

    @property
    def surely_not_taken(self) -> bool:
        """The worker did not place this call: its claim may be released for the retry."""
        return self in (Outcome.OVERLOADED, Outcome.FAILED, Outcome.UNDELIVERED)


# What a POST came to, and the status code (None: no answer).
Reply = tuple[Outcome, int | None]


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status == 409:
        return Outcome.ALREADY_ACCEPTED
    if status in (429, 503):
        return Outcome.OVERLOADED
    if 400 <= status < 500:
        return Outcome.REJECTED
    return Outcome.FAILED


class WorkerClient:
    """Keep-alive connections to the worker, one per POST whose answer is not read yet, on the standard library's
    http.client: no pool manager, retry or header objects per call. At Lambda's CPU share a POST's
    CPU is what makes calls leave late, and urllib3's pool cost about 2.5 times http.client's
    (requests' about 5 times: it scans os.environ for proxies per call); `bench_worker_client.py`
    measures all three. No retries: a request that fails is the task's to retry, with its claim
    and its Idempotency-Key."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"worker URL must be http(s)://host[:port][/path], got {base_url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path}/dial"
        self._path = f"{parts.path}/dial"
        self._host, self._port = parts.hostname, parts.port
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            import certifi  # the same trust store wherever the function runs

            self._tls = ssl.create_default_context(cafile=certifi.where())
        # Idle connections, newest last (deque's append and pop are atomic: threads may share a client).
        self._idle: deque[http.client.HTTPConnection] = deque()

    def dial(self, command: dict, *, connect_timeout: float, read_timeout: float) -> Reply:
        """Send and wait for the answer."""
        sending = self.send(command, connect_timeout=connect_timeout, read_timeout=read_timeout)
        assert sending is not None
        return sending.reply()

    def send(
        self,
        command: dict,
        *,
        connect_timeout: float,
        read_timeout: float,
        on_time: Callable[[], bool] = lambda: True,
    ) -> Sending | None:
        """Send the POST now and read its answer later (`Sending.reply`), so one thread can send
        each call at its slot and collect the answers after the batch's last one. `on_time` is
        asked once the connection is ready, right before the request leaves: False, and nothing
        is sent (None)."""
        body = json.dumps(command).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": command["callId"]}
        try:
            conn = self._connection(connect_timeout)
        except OSError:
            # Refused, no route, connect timeout, a failed TLS handshake: the request never left.
            return Sending(None, 0.0, self._idle)
        if not on_time():
            self._idle.append(conn)
            return None
        try:
            conn.request("POST", self._path, body=body, headers=headers)
        except (OSError, http.client.HTTPException):
            # A reset while sending: the worker may have read it whole all the same.
            conn.close()
            return Sending(conn, 0.0, self._idle, failed=True)
        return Sending(conn, time.monotonic() + read_timeout, self._idle)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _connection(self, connect_timeout: float) -> http.client.HTTPConnection:
        """An idle connection the worker has not closed meanwhile (readable while idle means its
        FIN, or bytes nobody asked for), else a new one, connected."""
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            if conn.sock is not None and not select.select([conn.sock], [], [], 0)[0]:
                return conn
            conn.close()
        if self._tls is not None:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=connect_timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout)
        conn.connect()
        return conn


class Sending:
    """One POST sent (or that could not be): its answer, read when asked, by the deadline its read
    timeout set when it left; the connection then goes back to the idle ones."""

    def __init__(
        self,
        conn: http.client.HTTPConnection | None,
        deadline: float,
        idle: deque[http.client.HTTPConnection],
        *,
        failed: bool = False,
    ) -> None:
        self._conn, self._deadline, self._idle, self._failed = conn, deadline, idle, failed

    def reply(self) -> Reply:
        conn = self._conn
        if conn is None:
            return Outcome.UNDELIVERED, None
        if self._failed:
            return Outcome.AMBIGUOUS, None
        try:
            assert conn.sock is not None
            # An answer already here is read at once, whatever time is left.
            conn.sock.settimeout(max(0.001, self._deadline - time.monotonic()))
            response = conn.getresponse()
            response.read()  # the body, so the connection can carry the next POST
        except (OSError, http.client.HTTPException):
            # A read timeout, a reset after sending: the worker may have taken it.
            conn.close()
            return Outcome.AMBIGUOUS, None
        if response.will_close:
            conn.close()
        else:
            self._idle.append(conn)
        return classify(response.status), response.status
