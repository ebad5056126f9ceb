"""The enrichment handler as Pipes calls it, against real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from conftest_helpers import emitted, metric_value
from local_pipeline.lambda_context import LocalLambdaContext

from .conftest import GOOD_CONFIG, sqs_record, task


@pytest.fixture
def enrich(campaigns_db, monkeypatch):
    from enrich_dial_task import handler as module

    monkeypatch.setenv("DB_HOST", campaigns_db.server.host)
    monkeypatch.setenv("DB_PORT", str(campaigns_db.server.port))
    monkeypatch.setenv("DB_NAME", campaigns_db.dbname)
    monkeypatch.setenv("DB_USER", "postgres")
    monkeypatch.setenv("CAMPAIGN_CACHE_TTL_SECONDS", "5")
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    module._store = None

    def call(records):
        return module.handler(records, LocalLambdaContext("enrich-dial-task", 5))

    call.module = module
    yield call
    if module._store is not None:
        module._store.close()
    module._store = None


def test_batch_of_ten_across_campaigns_in_one_query(campaigns_db, enrich):
    for c in ("c-1", "c-2", "c-3"):
        campaigns_db(c)
    records = [sqs_record(task(f"c-{i % 3 + 1}", f"k-{i}", f"+1415555{i:04d}"), f"m-{i}") for i in range(10)]
    items = enrich(records)
    assert [i["messageId"] for i in items] == [f"m-{i}" for i in range(10)]
    assert enrich.module._store.queries == 1
    enrich(records)
    assert enrich.module._store.queries == 1, "warm cache: no query"


def test_output_item_shape_is_what_the_dialer_receives(campaigns_db, enrich):
    campaigns_db("c-1", config={**GOOD_CONFIG, "maxCps": 5}, name="Spring")
    [item] = enrich([sqs_record(task(attempts=2, metadata={"lang": "he"}), "m-1")])
    enriched_at = item.pop("enrichedAt")
    assert enriched_at.endswith("Z") and "T" in enriched_at
    assert item == {
        "messageId": "m-1",
        "campaignId": "c-1",
        "contactId": "k-1",
        "phoneNumber": "+972501234567",
        "attempts": 2,
        "metadata": {"lang": "he"},
        "campaign": {"id": "c-1", "name": "Spring", "config": {**GOOD_CONFIG, "maxCps": 5}},
    }
    json.dumps(item)  # Pipes passes it on as JSON


def test_every_bad_record_is_dropped_with_its_reason_and_counted(campaigns_db, enrich, capsys, caplog):
    campaigns_db("c-1")
    campaigns_db("paused", status="paused")
    campaigns_db("broken", config={"ivrFlow": {}})
    bad = {
        "invalid_json": sqs_record("{not json", "b-1"),
        "body_not_an_object": sqs_record("[1, 2]", "b-2"),
        "invalid_campaign_id": sqs_record(task(campaign=""), "b-3"),
        "invalid_contact_id": sqs_record(task(contact=42), "b-4"),
        "invalid_phone_number": sqs_record(task(phone="0501234567"), "b-5"),
        "invalid_attempts": sqs_record(task(attempts=True), "b-6"),
        "invalid_metadata": sqs_record(task(metadata=[1]), "b-7"),
        "unknown_campaign": sqs_record(task(campaign="ghost"), "b-8"),
        "campaign_inactive": sqs_record(task(campaign="paused"), "b-9"),
        "campaign_misconfigured": sqs_record(task(campaign="broken"), "b-10"),
        "missing_message_id": {**sqs_record(task()), "messageId": ""},
    }
    good = [sqs_record(task(contact=f"k-{i}"), f"g-{i}") for i in range(3)]
    records = [good[0], *bad.values(), good[1], good[2]]
    capsys.readouterr()
    items = enrich(records)

    assert [i["messageId"] for i in items] == ["g-0", "g-1", "g-2"]
    out = emitted(capsys.readouterr().out)
    drops = [r for r in caplog.records if r.getMessage() == "dial task dropped"]
    assert sorted(d.reason for d in drops) == sorted(bad)
    assert {d.messageId for d in drops} == {r["messageId"] for r in bad.values()} - {""} | {None}
    logged = " ".join(str(vars(d)) for d in drops)
    assert "0501234567" not in logged and "+972501234567" not in logged, "phone numbers are masked"
    counted = {}
    for line in out:
        if "TasksDropped" in line:
            counted[line["Reason"]] = counted.get(line["Reason"], 0) + metric_value(line["TasksDropped"])
            assert line["service"] == "enrich-dial-task"
    assert counted == {reason: 1 for reason in bad}
    enriched = [metric_value(line["TasksEnriched"]) for line in out if "TasksEnriched" in line]
    assert enriched == [3]


def test_batch_of_one_and_empty_batch(campaigns_db, enrich):
    campaigns_db("c-1")
    assert len(enrich([sqs_record(task())])) == 1
    assert enrich([]) == []


def test_unicode_and_oversized_fields(campaigns_db, enrich):
    campaigns_db("קמפיין-1")
    items = enrich(
        [
            sqs_record(task(campaign="קמפיין-1", contact="איש-קשר", metadata={"name": "שלום 👋"}), "u-1"),
            sqs_record(task(campaign="c" * 129), "o-1"),
            sqs_record(task(contact="k" * 10_000), "o-2"),
            sqs_record(task(phone="+1" + "2" * 15), "o-3"),
        ]
    )
    assert [i["messageId"] for i in items] == ["u-1"]
    assert items[0]["metadata"] == {"name": "שלום 👋"}


def test_database_down_raises_and_the_next_call_recovers(monkeypatch):
    from enrich_dial_task import handler as module
    from local_pipeline.services import ThrowawayPostgres
    import psycopg
    from db_migrate.migrate import apply_migrations

    pg = ThrowawayPostgres().start()
    try:
        with psycopg.connect(pg.server.dsn(), autocommit=True) as conn:
            apply_migrations(conn)
            conn.execute(
                "INSERT INTO campaigns (id, name, status, config) VALUES ('c-1', 'one', 'active', %s)",
                (json.dumps(GOOD_CONFIG),),
            )
        monkeypatch.setenv("DB_HOST", pg.server.host)
        monkeypatch.setenv("DB_PORT", str(pg.port))
        monkeypatch.setenv("DB_NAME", "postgres")
        monkeypatch.setenv("CAMPAIGN_CACHE_TTL_SECONDS", "0")
        module._store = None
        ctx = LocalLambdaContext("enrich-dial-task", 5)
        assert len(module.handler([sqs_record(task())], ctx)) == 1
        pg.stop()
        with pytest.raises(psycopg.OperationalError):
            module.handler([sqs_record(task())], ctx)
        pg.start()
        assert len(module.handler([sqs_record(task())], ctx)) == 1
    finally:
        if module._store is not None:
            module._store.close()
        module._store = None
        pg.destroy()
