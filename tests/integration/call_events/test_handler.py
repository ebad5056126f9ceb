"""The call-events handler against real Redis: calls leave the live sets, a callId counts once
whatever its messageId, malformed events are dropped and counted by reason, the pace factor
follows the rule (the script and call_events/pace.py agree), and a Redis fault fails the batch."""

from __future__ import annotations

import json
import random

import pytest
import redis
from support.emf import emitted, metric_value
from support.env import new_container

from call_events.env import CallEventsEnv
from call_events.events import CallEvent
from call_events.loop import CallLoop
from call_events.pace import Pace, next_pace
from dialer_worker.admission import AdmissionRequest, RedisPacer
from local_pipeline.lambda_context import LocalLambdaContext

S = 1_000_000


def event(call_id, campaign="c-1", outcome="answered", message_id=None):
    body = {"callId": call_id, "campaignId": campaign, "outcome": outcome, "endedAt": "2026-11-29T10:00:00Z"}
    return {"messageId": message_id or f"m-{call_id}", "body": json.dumps(body)}


@pytest.fixture
def client(redis_server):
    c = redis.Redis(host=redis_server.host, port=redis_server.port)
    yield c
    c.close()


@pytest.fixture
def handler(redis_server, redis_key_prefix, monkeypatch):
    from call_events import handler as module

    env = CallEventsEnv.variables(
        host=redis_server.host,
        port=redis_server.port,
        key_prefix=redis_key_prefix,
        answer_rate_window=10,
        answer_rate_min_samples=5,
        answer_rate_cool_down_seconds=30,
        max_call_seconds=900,
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    new_container(module)
    yield lambda records: module.handler({"Records": records}, LocalLambdaContext("call-events", 30))
    new_container(module)


def admit(client, prefix, calls, campaign="c-1", min_rate=None):
    pacer = RedisPacer(client, prefix=prefix, claim_ttl_seconds=600)
    pacer.reserve(
        [AdmissionRequest(c, campaign, min_answer_rate=min_rate) for c in calls],
        max_cps=1000,
        max_wait_ms=5000,
        lease_ms=5000,
    )
    return pacer


def test_an_event_ends_its_live_call(handler, client, redis_key_prefix):
    pacer = admit(client, redis_key_prefix, ["a", "b", "c"])
    assert pacer.live_calls("c-1") == 3
    assert handler([event("a"), event("b", outcome="busy")]) == {"batchItemFailures": []}
    assert pacer.live_calls("c-1") == 1 and pacer.live_calls() == 1


def test_the_same_call_id_counts_once_whatever_its_message_id(handler, client, redis_key_prefix, capsys):
    admit(client, redis_key_prefix, ["a"])
    capsys.readouterr()
    handler([event("a", message_id="m-1"), event("a", message_id="m-2")])
    handler([event("a", message_id="m-3")])
    out = emitted(capsys.readouterr().out)
    assert sum(metric_value(line["CallEventsProcessed"]) for line in out if "CallEventsProcessed" in line) == 1
    assert sum(metric_value(line["CallEventsDuplicate"]) for line in out if "CallEventsDuplicate" in line) == 2
    assert client.llen("{" + redis_key_prefix + "}:outcomes:campaign:c-1") == 1


def test_malformed_events_are_dropped_and_counted_by_reason(handler, capsys):
    capsys.readouterr()
    reply = handler(
        [
            {"messageId": "x-1", "body": "{not json"},
            event("ok"),
            {
                "messageId": "x-2",
                "body": json.dumps(
                    {"callId": "z", "campaignId": "c", "outcome": "nope", "endedAt": "2026-11-29T10:00:00Z"}
                ),
            },
        ]
    )
    assert reply == {"batchItemFailures": []}
    out = emitted(capsys.readouterr().out)
    reasons = {line["Reason"]: metric_value(line["CallEventsDropped"]) for line in out if "Reason" in line}
    assert reasons == {"invalid_json": 1, "invalid_outcome": 1}


def test_a_poor_answer_rate_halves_the_pace_and_metrics_say_so(handler, client, redis_key_prefix, capsys):
    admit(client, redis_key_prefix, ["seed"], min_rate=0.5)
    capsys.readouterr()
    handler([event(f"n-{i}", outcome="no_answer") for i in range(5)])
    assert client.hget("{" + redis_key_prefix + "}:pace:campaign:c-1", "factor") == b"0.5"
    out = emitted(capsys.readouterr().out)
    assert [metric_value(line["PaceFactor"]) for line in out if "PaceFactor" in line] == [0.5]
    assert [metric_value(line["AnswerRate"]) for line in out if "AnswerRate" in line] == [0.0]
    # Within the cool-down, more bad news changes nothing.
    handler([event(f"m-{i}", outcome="busy") for i in range(5)])
    assert client.hget("{" + redis_key_prefix + "}:pace:campaign:c-1", "factor") == b"0.5"


def test_without_min_answer_rate_the_pace_never_falls(handler, client, redis_key_prefix):
    admit(client, redis_key_prefix, ["seed"], min_rate=None)
    handler([event(f"n-{i}", outcome="no_answer") for i in range(10)])
    assert client.hget("{" + redis_key_prefix + "}:pace:campaign:c-1", "factor") is None


def test_redis_down_fails_the_whole_batch(redis_key_prefix, monkeypatch):
    from call_events import handler as module
    from local_pipeline.services import free_port

    env = CallEventsEnv.variables(
        host="127.0.0.1",
        port=free_port(),
        key_prefix=redis_key_prefix,
        answer_rate_window=10,
        answer_rate_min_samples=5,
        answer_rate_cool_down_seconds=30,
        max_call_seconds=900,
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    new_container(module)
    with pytest.raises(redis.exceptions.ConnectionError):
        module.handler({"Records": [event("a")]}, LocalLambdaContext("call-events", 30))
    new_container(module)


def test_the_script_follows_the_python_rule(client, redis_key_prefix):
    """Random outcome streams in small batches: after each batch the script's factor is the one
    pace.py computes from the same window, with the cool-down set to zero so every batch may act."""
    rng = random.Random(3)
    loop = CallLoop(client, prefix=redis_key_prefix, window=20, min_samples=8, cool_down_seconds=0.000001)
    client.hset("{" + redis_key_prefix + "}:pace:campaign:c-1", "min_rate", "0.4")
    window: list[str] = []
    pace = Pace()
    n = 0
    for _ in range(40):
        batch = []
        share = rng.choice([0.1, 0.4, 0.9])
        for _ in range(rng.randint(1, 4)):
            n += 1
            outcome = "answered" if rng.random() < share else "no_answer"
            batch.append(CallEvent(f"m-{n}", f"c{n}", "c-1", outcome, None))
        window = ([e.outcome for e in reversed(batch)] + window)[:20]
        pace = next_pace(pace, window, 0.4, now_us=(n + 10) * S, min_samples=8, cool_down_us=1)
        state = loop.record(batch).campaigns["c-1"]
        assert state.pace_factor == pytest.approx(pace.factor), n
