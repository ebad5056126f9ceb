"""The ledger handler as the event source mapping calls it: its environment read from the
variables the stack writes (ledger_fields), a batch written, a bad environment an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.env import new_container

from call_ledger.env import LedgerEnv
from call_ledger.records import AttemptRecord, to_json
from local_pipeline.lambda_context import LocalLambdaContext
from shared.drops import DropReason
from shared.env_contract import InvalidEnvironment
from stacks.function_env import ledger_fields, redis_fields
from stacks.settings import DEV


@pytest.fixture
def handler(postgres_server, fresh_database, ledger_dsn, redis_server, monkeypatch):
    from call_ledger import handler as module

    fields = ledger_fields(
        DEV,
        database={"host": postgres_server.host, "port": postgres_server.port, "name": fresh_database},
        redis=redis_fields(redis_server.host, redis_server.port, tls=False, key_prefix="ledger-test"),
        dial_tasks_queue_url="http://127.0.0.1:9/unused",
    )
    for name, value in LedgerEnv.variables(**fields).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    new_container(module)
    yield module
    new_container(module)


def test_a_batch_through_the_handler(handler, conn):
    dropped = AttemptRecord.dropped(
        campaign_id="c-1",
        contact_id="k-1",
        attempt=0,
        reason=DropReason.DO_NOT_CALL,
        dropped_at=datetime(2026, 12, 2, tzinfo=UTC),
    )
    event = {"Records": [{"messageId": "m-1", "body": to_json(dropped)}, {"messageId": "m-2", "body": "{"}]}
    assert handler.handler(event, LocalLambdaContext("call-ledger", 60)) == {"batchItemFailures": []}
    assert conn.execute("SELECT disposition, reason FROM call_attempts").fetchall() == [("dropped", "do_not_call")]
    env, _ = handler.container()
    assert env.call_record_retention_days == DEV.call_record_retention_days and env.redis.key_prefix == "ledger-test"


def test_a_missing_variable_fails_the_invocation(handler, monkeypatch):
    monkeypatch.delenv("DIAL_TASKS_QUEUE_URL")
    new_container(handler)
    with pytest.raises(InvalidEnvironment, match="DIAL_TASKS_QUEUE_URL"):
        handler.handler({"Records": []}, LocalLambdaContext("call-ledger", 60))


def test_the_batch_metrics_by_name(handler, capsys):
    from support.emf import emitted, metric_value

    from shared.observability import Metric

    good = AttemptRecord.dropped(
        campaign_id="c-1",
        contact_id="k-2",
        attempt=0,
        reason=DropReason.EXPIRED,
        dropped_at=datetime(2026, 12, 2, tzinfo=UTC),
    )
    event = {"Records": [{"messageId": "m-1", "body": to_json(good)}, {"messageId": "m-2", "body": "[]"}]}
    capsys.readouterr()
    handler.handler(event, LocalLambdaContext("call-ledger", 60))
    documents = emitted(capsys.readouterr().out)
    values: dict[str, float] = {}
    for doc in documents:
        for name in (
            Metric.RECORDS_WRITTEN,
            Metric.RECORDS_MERGED,
            Metric.RECORDS_DROPPED,
            Metric.RETRIES_ENQUEUED,
            Metric.LEDGER_ORPHANS,
        ):
            if name in doc and doc.get("Reason") is None:
                values[name] = metric_value(doc[name])
    assert values == {
        Metric.RECORDS_WRITTEN: 1,
        Metric.RECORDS_MERGED: 0,
        Metric.RECORDS_DROPPED: 1,
        Metric.RETRIES_ENQUEUED: 0,
        Metric.LEDGER_ORPHANS: 0,
    }
    by_reason = [d for d in documents if d.get("Reason") == "not_an_object"]
    assert [metric_value(d[Metric.RECORDS_DROPPED]) for d in by_reason] == [1]
