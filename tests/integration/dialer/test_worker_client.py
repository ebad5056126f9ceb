"""WorkerClient against the worker stand-in: what each kind of reply, or none, comes to."""

from __future__ import annotations

import socket

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
