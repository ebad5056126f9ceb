"""The worker stand-in in its own process: what its callers read and set, across the process line."""

from __future__ import annotations

import json
import os
import socket
import time

import boto3
import pytest
import requests

from local_pipeline.sqs_local import LocalSqsServer
from local_pipeline.worker_standin import WorkerStandIn


@pytest.fixture
def worker():
    standin = WorkerStandIn().start()
    yield standin
    standin.stop()


def post(worker, call_id, campaign="c-1", session=None):
    return (session or requests).post(
        worker.url + "/dial", json={"callId": call_id, "campaignId": campaign}, headers={"Idempotency-Key": call_id}
    )


def test_arrivals_are_taken_in_the_stand_ins_own_process_on_the_callers_clock(worker):
    assert worker.pid is not None and worker.pid != os.getpid()
    before = time.monotonic()
    post(worker, "a")
    after = time.monotonic()
    [call] = worker.calls
    assert before <= call.at_monotonic <= after, "CLOCK_MONOTONIC is one clock for both processes"
    assert call.body == {"callId": "a", "campaignId": "c-1"} and call.idempotency_key == "a" and call.status == 202


def test_a_call_arrives_when_its_first_bytes_reach_the_stand_in_not_when_it_is_read(worker):
    """The kernel's receive time: a request whose headers come later (as when the stand-in's
    interpreter is busy, and reads several at once) still arrived with its first bytes."""
    host, port = worker.url.removeprefix("http://").split(":")
    body = json.dumps({"callId": "a", "campaignId": "c-1"}).encode()
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(b"POST /dial HTTP/1.1\r\n")
        time.sleep(0.2)  # the request line is in the stand-in's socket, the rest not yet
        rest_sent = time.monotonic()
        conn.sendall(
            b"Host: x\r\nContent-Type: application/json\r\nIdempotency-Key: a\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert conn.recv(1024).startswith(b"HTTP/1.1 202")
    [call] = worker.calls
    assert call.at_monotonic < rest_sent, "stamped when the request line arrived"
    assert abs((call.at_wall - time.time()) - (call.at_monotonic - time.monotonic())) < 0.05, "one instant"


def test_scripts_shares_and_the_idempotency_key_answer_as_before(worker):
    worker.script(500, 429)
    assert [post(worker, k).status_code for k in ("a", "b", "c", "c")] == [500, 429, 202, 409]
    worker.set_shares({503: 1.0})
    assert post(worker, "d").status_code == 503
    with pytest.raises(ValueError, match="more than 1"):
        worker.set_shares({503: 0.7, 500: 0.7})
    assert [c.status for c in worker.calls] == [500, 429, 202, 409, 503]
    assert [c.idempotency_key for c in worker.accepted()] == ["c"]
    assert worker.stats()["callsByCampaign"] == {"c-1": 5}
    worker.reset()
    assert worker.calls == [] and post(worker, "c").status_code == 202, "reset forgets accepted keys too"


def test_settings_assigned_before_start_reach_the_child():
    standin = WorkerStandIn()
    standin.latency_s = 0.2
    standin.start()
    try:
        started = time.monotonic()
        post(standin, "a")
        assert time.monotonic() - started >= 0.2
        assert standin.latency_s == 0.2
    finally:
        standin.stop()


def test_a_duration_must_be_a_draw_the_child_can_repeat(worker):
    worker.duration_s = lambda rng: rng.uniform(1.0, 2.0)
    worker.duration_s = 0.5
    with pytest.raises(TypeError):
        worker.duration_s = lambda rng: 2 * rng.uniform(1.0, 2.0)
    with pytest.raises(TypeError):
        worker.duration_s = lambda rng: rng.uniform(1.0, 2.0) + rng.uniform(1.0, 2.0)


def test_call_events_go_out_from_the_child_through_a_client_of_its_own(worker, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sqs = LocalSqsServer().start()
    try:
        client = boto3.client("sqs", endpoint_url=sqs.endpoint, region_name="us-east-1")
        queue_url = client.create_queue(QueueName="call-events")["QueueUrl"]
        # Long enough that the first call is still live after the third POST on a loaded machine.
        worker.duration_s = lambda rng: rng.uniform(2.0, 2.5)
        worker.answer_rates = {"c-1": 1.0}
        worker.report_to(client, queue_url)  # the client's endpoint, region and credentials
        session = requests.Session()
        for k in ("a", "b", "c"):
            post(worker, k, session=session)
        assert worker.live() == 3 and worker.peak_live == {"c-1": 3, "*": 3}
        deadline = time.monotonic() + 10
        while worker.events_sent < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.events_sent == 3 and worker.live() == 0
        fleet = [live["*"] for _, live in worker.live_samples]
        assert fleet[:3] == [1, 2, 3] and fleet[-1] == 0, "live from its 2xx until its event is sent"
        reply = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        events = [json.loads(m["Body"]) for m in reply["Messages"]]
        assert sorted(e["callId"] for e in events) == ["a", "b", "c"]
        assert {e["outcome"] for e in events} == {"answered"}
        assert all(2.0 <= e["durationSeconds"] <= 2.5 for e in events)
    finally:
        sqs.stop()


def test_stop_ends_the_child_and_a_restart_on_the_same_port_keeps_the_calls(worker):
    post(worker, "a")
    pid, url = worker.pid, worker.url
    worker.stop()
    assert worker.pid is None and len(worker.calls) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/dial", json={"callId": "b"})
    worker._requested_port = int(url.rsplit(":", 1)[1])
    worker.start()
    assert post(worker, "b").status_code == 202
    assert [c.body["callId"] for c in worker.calls] == ["a", "b"]
