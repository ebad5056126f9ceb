"""The dialer handler as the pipe calls it: env configuration, response shape, metrics."""

from __future__ import annotations

import pytest
from support.emf import emitted, metric_value
from support.env import new_container

from dialer_worker.env import GATES_OFF, DialerEnv
from local_pipeline.lambda_context import LocalLambdaContext
from shared.env_contract import InvalidEnvironment

from .conftest import item


@pytest.fixture
def dialer(redis_server, redis_key_prefix, worker, sqs_endpoint, queue_url, monkeypatch):
    from dialer_worker import handler as module

    env = DialerEnv.variables(
        host=redis_server.host,
        port=redis_server.port,
        key_prefix=redis_key_prefix,
        worker_url=worker.url,
        max_cps=50,
        defer_queue_url=queue_url,
        reserved_concurrency=5,
        claim_ttl_seconds=3600,
        restore_hold_seconds=20,
        redis_quarantine_seconds=15,
        max_call_seconds=900,
        default_time_zone="America/New_York",
        **GATES_OFF,
    )
    for k, v in {**env, "AWS_ENDPOINT_URL_SQS": sqs_endpoint}.items():
        monkeypatch.setenv(k, v)
    new_container(module)

    def call(event):
        return module.handler(event, LocalLambdaContext("dialer-worker", 15))

    yield call
    new_container(module)


def test_response_names_only_failed_items_and_metrics_are_emitted(dialer, worker, capsys):
    worker.script(202, 500, 202)
    batch = [item(i) for i in range(3)]
    capsys.readouterr()
    response = dialer(batch)
    # The script's statuses go to the calls in the order they arrive, and on a loaded machine a
    # call the dialer woke too late for is re-queued (Deferred), not sent: the failures named are
    # exactly the items the worker answered 500, whichever those were.
    refused = {c.body["contactId"] for c in worker.calls if c.status == 500}
    named = [{"itemIdentifier": i["messageId"]} for i in batch if i["task"]["contactId"] in refused]
    assert response == {"batchItemFailures": named}
    out = emitted(capsys.readouterr().out)
    [emf] = [line for line in out if "DialsSent" in line]
    assert emf["service"] == "dialer-worker"
    sent, failed = metric_value(emf["DialsSent"]), metric_value(emf["DialsFailed"])
    assert (sent, failed) == (sum(c.status == 202 for c in worker.calls), len(refused))
    assert sent + failed + metric_value(emf["Deferred"]) == 3
    assert metric_value(emf["RedisUnavailable"]) == 0 and metric_value(emf["EffectiveCps"]) == 50
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Deferred", "DuplicateSuppressed", "WorkerOverloaded", "PacingDelayMs"} <= names


def test_a_non_list_event_dials_nothing_and_fails_nothing(dialer, worker):
    assert dialer({"Records": []}) == {"batchItemFailures": []}
    assert worker.calls == []


def test_dropped_items_are_counted_by_reason(dialer, worker, capsys):
    capsys.readouterr()
    dialer([item(1, phoneNumber=None)])
    out = emitted(capsys.readouterr().out)
    dropped = [line for line in out if "DialsDropped" in line and "Reason" in line]
    assert [(d["Reason"], metric_value(d["DialsDropped"])) for d in dropped] == [("invalid_phone_number", 1)]


def test_a_missing_or_malformed_variable_fails_the_first_invocation_naming_each(dialer, monkeypatch):
    monkeypatch.delenv(DialerEnv.env_name("worker_url"))
    monkeypatch.setenv(DialerEnv.env_name("max_cps"), "fast")
    with pytest.raises(InvalidEnvironment) as raised:
        dialer([item(1)])
    assert "NODE_WORKER_URL is required" in str(raised.value)
    assert "MAX_CPS: could not convert string to float: 'fast'" in str(raised.value)
