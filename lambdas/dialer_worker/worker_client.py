"""POST /dial to the Node.js worker, and what its reply means for the task."""

from __future__ import annotations

import enum
import json
import select
import socket
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


# A reply's status line and headers: the worker's are a few hundred bytes.
MAX_HEAD_BYTES = 16 * 1024
_CRLF2 = b"\r\n\r\n"


class WorkerClient:
    """Keep-alive connections to the worker, one per POST whose answer is not read yet, on plain
    sockets: the request leaves in one write, and a reply is read as far as its status line, its
    headers and a Content-Length body. At Lambda's CPU share a POST's CPU is what makes calls
    leave late, and http.client (two writes, an email parser for the headers), urllib3's pool and
    requests (which scans os.environ for proxies per call) each cost more of it:
    `bench_worker_client.py` measures the four side by side. The status is all a reply
    means here, so a reply framed any other way (chunked, no length, Connection: close, HTTP/1.0)
    is read no further and its connection closed. No retries: a request that fails is the task's
    to retry, with its claim and its Idempotency-Key."""

    def __init__(self, base_url: str, *, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: whom an https worker's certificate must be signed by (default: certifi's
        bundle, the same trust store wherever the function runs)."""
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"worker URL must be http(s)://host[:port][/path], got {base_url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path}/dial"
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._head = (
            f"POST {parts.path}/dial HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        ).encode("ascii")
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            if tls is None:
                import certifi

                tls = ssl.create_default_context(cafile=certifi.where())
            self._tls = tls
        # Idle connections, newest last (deque's append and pop are atomic: threads may share a client).
        self._idle: deque[socket.socket] = deque()

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
        key = str(command["callId"])
        if "\r" in key or "\n" in key:
            raise ValueError(f"callId {key!r} cannot be an Idempotency-Key header")
        request = b"%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (self._head, key.encode(), len(body), body)
        try:
            sock = self._connection(connect_timeout)
        except OSError:
            # Refused, no route, connect timeout, a failed TLS handshake: the request never left.
            return Sending(None, 0.0, self._idle)
        if not on_time():
            self._idle.append(sock)
            return None
        try:
            sock.sendall(request)
        except OSError:
            # A reset while sending: the worker may have read it whole all the same.
            sock.close()
            return Sending(sock, 0.0, self._idle, failed=True)
        return Sending(sock, time.monotonic() + read_timeout, self._idle)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _connection(self, connect_timeout: float) -> socket.socket:
        """An idle connection the worker has not closed meanwhile (readable while idle means its
        FIN, or bytes nobody asked for), else a new one, connected."""
        while True:
            try:
                sock = self._idle.pop()
            except IndexError:
                break
            if not select.select([sock], [], [], 0)[0]:
                return sock
            sock.close()
        sock = socket.create_connection((self._host, self._port), timeout=connect_timeout)
        try:
            # The request is one write; nothing to gain from Nagle's wait.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return sock


class Sending:
    """One POST sent (or that could not be): its answer, read when asked, by the deadline its read
    timeout set when it left; the connection then goes back to the idle ones."""

    def __init__(
        self,
        sock: socket.socket | None,
        deadline: float,
        idle: deque[socket.socket],
        *,
        failed: bool = False,
    ) -> None:
        self._sock, self._deadline, self._idle, self._failed = sock, deadline, idle, failed

    def reply(self) -> Reply:
        sock = self._sock
        if sock is None:
            return Outcome.UNDELIVERED, None
        if self._failed:
            return Outcome.AMBIGUOUS, None
        try:
            # An answer already here is read at once, whatever time is left.
            sock.settimeout(max(0.001, self._deadline - time.monotonic()))
            status, reusable = _read_reply(sock)
        except (OSError, ValueError):
            # A read timeout, a reset after sending, a reply that is not HTTP: the worker may have
            # taken it.
            sock.close()
            return Outcome.AMBIGUOUS, None
        if reusable:
            self._idle.append(sock)
        else:
            sock.close()
        return classify(status), status


def _read_reply(sock: socket.socket) -> tuple[int, bool]:
    """(the final status, whether the connection may carry the next POST). Interim 1xx replies
    are skipped; the body is read only when a Content-Length frames it."""
    data = b""
    while True:
        while (end := data.find(_CRLF2)) < 0:
            if len(data) > MAX_HEAD_BYTES:
                raise ValueError("reply headers too long")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before a reply")
            data += chunk
        lines = data[:end].split(b"\r\n")
        data = data[end + 4 :]
        version, status_text = lines[0].split(b" ", 2)[:2]
        status = int(status_text)
        if not 100 <= status < 200:
            break
    length: int | None = None
    reusable = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" or (name == b"connection" and b"close" in value.lower()):
            reusable = False
    if not reusable or length is None:
        return status, False
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return status, False
        data += chunk
    return status, len(data) == length  # bytes beyond the body: nobody asked for them
