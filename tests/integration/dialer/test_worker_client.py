"""WorkerClient against the worker stand-in: what each kind of reply, or none, comes to."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from dialer_worker.worker_client import Outcome, WorkerClient
from local_pipeline.services import make_throwaway_certificates
from local_pipeline.worker_standin import HANG


def command(call_id):
    return {"callId": call_id, "campaignId": "c-1", "contactId": "k", "phoneNumber": "+15550100000"}


def test_a_2xx_then_a_409_for_the_same_idempotency_key(worker):
    client = WorkerClient(worker.url)
    assert client.dial(command("a"), connect_timeout=1, read_timeout=2) == (Outcome.ACCEPTED, 202)
    assert client.dial(command("a"), connect_timeout=1, read_timeout=2) == (Outcome.ALREADY_ACCEPTED, 409)
    [first, _] = worker.calls
    assert first.idempotency_key == "a" and first.body["callId"] == "a"


def test_scripted_statuses_are_classified(worker):
    worker.script(429, 500, 400)
    client = WorkerClient(worker.url)
    got = [client.dial(command(f"s{i}"), connect_timeout=1, read_timeout=2) for i in range(3)]
    assert got == [(Outcome.OVERLOADED, 429), (Outcome.FAILED, 500), (Outcome.REJECTED, 400)]


def test_no_answer_within_the_read_timeout_is_ambiguous(worker):
    worker.script(HANG)
    client = WorkerClient(worker.url)
    assert client.dial(command("h"), connect_timeout=1, read_timeout=0.2) == (Outcome.AMBIGUOUS, None)


def test_a_refused_connection_never_reached_the_worker():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = WorkerClient(f"http://127.0.0.1:{port}")
    assert client.dial(command("r"), connect_timeout=1, read_timeout=1) == (Outcome.UNDELIVERED, None)


class _OneRequestPerConnection:
    """A worker that answers each connection's first POST with a 202 and then closes it, saying
    so (`Connection: close`) or not (an idle keep-alive connection the worker dropped)."""

    def __init__(self, *, say_close: bool) -> None:
        self.connections = 0
        self._say_close = say_close
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        v
                        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                        if k.lower() == b"content-length"
                    )
                )
                while len(body) < length:
                    body += conn.recv(65536)
                close = b"Connection: close\r\n" if self._say_close else b""
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n" + close + b"\r\n{}")

    def close(self) -> None:
        self._server.close()


@pytest.mark.parametrize("say_close", [True, False], ids=["connection-close", "dropped-while-idle"])
def test_a_connection_the_worker_closed_is_not_reused(say_close):
    worker = _OneRequestPerConnection(say_close=say_close)
    try:
        client = WorkerClient(worker.url)
        first = client.dial(command("c1"), connect_timeout=1, read_timeout=2)
        time.sleep(0.05)  # the worker's FIN arrives while the connection is idle
        second = client.dial(command("c2"), connect_timeout=1, read_timeout=2)
        assert (first, second) == ((Outcome.ACCEPTED, 202), (Outcome.ACCEPTED, 202))
        assert worker.connections == 2
    finally:
        worker.close()


def test_the_worker_url_must_be_http():
    with pytest.raises(ValueError, match="worker URL"):
        WorkerClient("ftp://worker:21")


class _Replies:
    """A worker that reads each POST whole and answers it with the next of `replies` (raw bytes),
    on one connection or many, counting connections."""

    def __init__(self, *replies: bytes, tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self._replies = list(replies)
        self._tls = tls
        self._server = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://localhost:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self._replies:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:
                conn = self._tls.wrap_socket(conn, server_side=True)
            except OSError:  # a client that does not trust this server's CA
                conn.close()
                return
        with conn:
            data = b""
            while self._replies:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(
                    next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                )
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                conn.sendall(self._replies.pop(0))

    def close(self) -> None:
        self._server.close()


OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(
    ("reply", "reused"),
    [
        (OK, True),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, True),
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False),
        (b"HTTP/1.0 202 Accepted\r\nContent-Length: 2\r\n\r\n{}", False),
        (b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", False),
    ],
    ids=["content-length", "interim-100", "chunked", "http-1.0", "connection-close"],
)
def test_the_status_is_read_whatever_the_framing_and_only_a_content_length_reply_keeps_its_connection(reply, reused):
    worker = _Replies(reply, OK)
    try:
        client = WorkerClient(worker.url)
        assert client.dial(command("f1"), connect_timeout=1, read_timeout=2) == (Outcome.ACCEPTED, 202)
        assert client.dial(command("f2"), connect_timeout=1, read_timeout=2) == (Outcome.ACCEPTED, 202)
        assert worker.connections == (1 if reused else 2)
    finally:
        worker.close()


@pytest.mark.parametrize(
    "reply",
    [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"HTTP/1.1 202 Accepted\r\nX: " + b"y" * 20_000],
    ids=["not-http", "endless-headers"],
)
def test_a_reply_that_is_not_http_is_ambiguous(reply):
    worker = _Replies(reply)
    try:
        client = WorkerClient(worker.url)
        assert client.dial(command("n1"), connect_timeout=1, read_timeout=1) == (Outcome.AMBIGUOUS, None)
    finally:
        worker.close()


def test_a_call_id_that_would_break_the_header_is_refused(worker):
    with pytest.raises(ValueError, match="Idempotency-Key"):
        WorkerClient(worker.url).dial(command("a\r\nX-Injected: 1"), connect_timeout=1, read_timeout=1)
    assert worker.calls == []


def test_an_https_worker_is_verified_and_its_connection_kept(tmp_path):
    make_throwaway_certificates(str(tmp_path))
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    worker = _Replies(OK, OK, tls=server_side)
    try:
        trusted = WorkerClient(worker.url, tls=ssl.create_default_context(cafile=str(tmp_path / "ca.crt")))
        assert trusted.dial(command("t1"), connect_timeout=1, read_timeout=2) == (Outcome.ACCEPTED, 202)
        assert trusted.dial(command("t2"), connect_timeout=1, read_timeout=2) == (Outcome.ACCEPTED, 202)
        assert worker.connections == 1
        # The default trust store does not know the throwaway CA: the handshake fails, nothing left.
        assert WorkerClient(worker.url).dial(command("t3"), connect_timeout=1, read_timeout=2) == (
            Outcome.UNDELIVERED,
            None,
        )
    finally:
        worker.close()
