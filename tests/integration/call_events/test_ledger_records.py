"""The call events' ledger records against real Redis and SQS (moto): an `outcome` record per
parsed event, repeats included (the ledger merges them), none for a dropped event; an event
whose record SQS did not acknowledge is a batch item failure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from support.records_queue import RecordsQueue, RefusingSqs

from call_events import core
from call_events.clients import build_clients
from call_events.env import CallEventsEnv


def event(call_id, outcome="no_answer", message_id=None):
    body = {"callId": call_id, "campaignId": "c-1", "outcome": outcome, "endedAt": "2026-11-29T10:00:00Z"}
    return {"messageId": message_id or f"m-{call_id}", "body": json.dumps(body)}


@pytest.fixture
def sqs(sqs_endpoint):
    return boto3.client(
        "sqs", endpoint_url=sqs_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )


def env_for(redis_server, prefix, queue_url):
    return CallEventsEnv(
        host=redis_server.host,
        port=redis_server.port,
        key_prefix=prefix,
        answer_rate_window=10,
        answer_rate_min_samples=5,
        answer_rate_cool_down_seconds=30,
        max_call_seconds=900,
        call_records_queue_url=queue_url,
    )


def test_an_outcome_record_per_parsed_event_repeats_included(redis_server, redis_key_prefix, sqs):
    queue = RecordsQueue(sqs)
    env = env_for(redis_server, redis_key_prefix, queue.url)
    clients = build_clients(env, sqs=lambda: sqs)
    batch = {"Records": [event("a"), event("a", message_id="m-again"), event("b", "answered"), {"messageId": "x"}]}
    try:
        response, report = core.process(batch, env, clients)
    finally:
        clients.close()
    assert response == {"batchItemFailures": []}
    assert len(report.result.duplicates) == 1 and report.records_sent == 3
    got = sorted((r.call_id, r.outcome, r.ended_at) for r in queue.drain())
    ended = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert got == [("a", "no_answer", ended), ("a", "no_answer", ended), ("b", "answered", ended)]


def test_an_event_whose_record_was_not_acknowledged_comes_back(redis_server, redis_key_prefix):
    env = env_for(redis_server, redis_key_prefix, "https://sqs.example/records")
    clients = build_clients(env, sqs=RefusingSqs)
    try:
        response, report = core.process({"Records": [event("a"), event("b")]}, env, clients)
    finally:
        clients.close()
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-a"}, {"itemIdentifier": "m-b"}]}
    assert report.records_not_sent == 2
