"""WorkerClient against the worker stand-in: what each kind of reply, or none, comes to."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dialer_worker.worker_client import Outcome, WorkerClient
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
