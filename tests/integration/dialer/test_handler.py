"""The dialer handler as the pipe calls it: env configuration, response shape, metrics."""

from __future__ import annotations

import pytest

from conftest_helpers import emitted, metric_value
from local_pipeline.lambda_context import LocalLambdaContext

from .conftest import item


@pytest.fixture
def dialer(redis_server, redis_key_prefix, worker, sqs_endpoint, queue_url, monkeypatch):
    from dialer_worker import handler as module

    env = {
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "REDIS_KEY_PREFIX": redis_key_prefix,
        "NODE_WORKER_URL": worker.url,
        "MAX_CPS": "50",
        "DEFER_QUEUE_URL": queue_url,
        "DIALER_RESERVED_CONCURRENCY": "5",
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    module._dispatcher = None

    def call(event):
        return module.handler(event, LocalLambdaContext("dialer-worker", 15))

    yield call
    module._dispatcher = None


def test_response_names_only_failed_items_and_metrics_are_emitted(dialer, worker, capsys):
    worker.script(202, 500, 202)
    batch = [item(i) for i in range(3)]
    capsys.readouterr()
    response = dialer(batch)
    assert response == {"batchItemFailures": [{"itemIdentifier": batch[1]["messageId"]}]}
    out = emitted(capsys.readouterr().out)
    [emf] = [line for line in out if "DialsSent" in line]
    assert emf["service"] == "dialer-worker"
    assert metric_value(emf["DialsSent"]) == 2 and metric_value(emf["DialsFailed"]) == 1
    assert metric_value(emf["RedisUnavailable"]) == 0 and metric_value(emf["EffectiveCps"]) == 50
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Deferred", "DuplicateSuppressed", "WorkerOverloaded", "PacingDelayMs"} <= names


def test_a_non_list_event_dials_nothing_and_fails_nothing(dialer, worker):
    assert dialer({"Records": []}) == {"batchItemFailures": []}
    assert worker.calls == []


def test_dropped_items_are_counted_by_reason(dialer, worker, capsys):
    capsys.readouterr()
    dialer([dict(item(1), phoneNumber=None)])
    out = emitted(capsys.readouterr().out)
    dropped = [line for line in out if "DialsDropped" in line and "Reason" in line]
    assert [(d["Reason"], metric_value(d["DialsDropped"])) for d in dropped] == [("invalid_phoneNumber", 1)]
