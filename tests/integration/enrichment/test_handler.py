"""The enrichment handler as Pipes calls it, against real PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest
from support.emf import emitted, metric_value
from support.env import new_container

from enrich_dial_task.env import EnrichmentEnv
from local_pipeline.lambda_context import LocalLambdaContext
from shared.dial_task import EnrichedTask

from .conftest import GOOD_CONFIG, sqs_record, task


@pytest.fixture
def enrich(campaigns_db, monkeypatch):
    from enrich_dial_task import handler as module

    server = campaigns_db.server
    env = EnrichmentEnv.variables(
        host=server.host, port=server.port, name=campaigns_db.dbname, user=server.user, campaign_cache_ttl_seconds=5
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(EnrichmentEnv.env_name("secret_arn"), raising=False)
    new_container(module)

    def call(records):
        return module.handler(records, LocalLambdaContext("enrich-dial-task", 5))

    call.module = module
    yield call
    new_container(module)


def test_batch_of_ten_across_campaigns_in_one_query(campaigns_db, enrich):
    for c in ("c-1", "c-2", "c-3"):
        campaigns_db(c)
    records = [sqs_record(task(f"c-{i % 3 + 1}", f"k-{i}", f"+1415555{i:04d}"), f"m-{i}") for i in range(10)]
    items = enrich(records)
    assert [i["messageId"] for i in items] == [f"m-{i}" for i in range(10)]
    assert enrich.module.container()[1].store.queries == 1
    enrich(records)
    # Campaigns come from the cache; the do-not-call list is read on every batch, in that one query.
    assert enrich.module.container()[1].store.queries == 2, "one query per batch, warm or cold"


def test_a_number_on_the_do_not_call_list_is_dropped_from_the_next_batch(campaigns_db, enrich, caplog):
    campaigns_db("c-1")
    records = [sqs_record(task(contact=f"k-{i}", phone=f"+1415555{i:04d}"), f"m-{i}") for i in range(3)]
    assert len(enrich(records)) == 3
    with psycopg.connect(campaigns_db.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO do_not_call (phone_number, source) VALUES ('+14155550001', 'opt-out')")
    items = enrich(records)
    assert [i["messageId"] for i in items] == ["m-0", "m-2"]
    drops = [r for r in caplog.records if r.getMessage() == "dial task dropped"]
    assert [(d.reason, d.messageId, d.phoneNumber) for d in drops] == [("do_not_call", "m-1", "+*******0001")]
    assert enrich.module.container()[1].store.queries == 2


def test_output_item_shape_is_what_the_dialer_receives(campaigns_db, enrich):
    campaigns_db("c-1", config={**GOOD_CONFIG, "maxCps": 5}, name="Spring")
    record = sqs_record(task(attempts=2, metadata={"lang": "he"}), "m-1")
    record["attributes"]["MessageGroupId"] = "c-1"
    record["messageAttributes"] = {"source": {"stringValue": "crm", "dataType": "String"}}
    [item] = enrich([record])
    enriched_at = item.pop("enrichedAt")
    assert enriched_at.endswith("Z") and "T" in enriched_at
    assert item == {
        "messageId": "m-1",
        "body": record["body"],
        "messageGroupId": "c-1",
        "messageAttributes": {"source": {"stringValue": "crm", "dataType": "String"}},
        "firstSentMs": 1700000000000,  # the record's SentTimestamp
        "task": {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": "+972501234567", "attempts": 2},
        "campaign": {"id": "c-1", "name": "Spring", "status": "active", "config": {**GOOD_CONFIG, "maxCps": 5}},
    }
    json.dumps(item)  # Pipes passes it on as JSON


def test_the_dialer_reads_back_exactly_what_the_enrichment_wrote(campaigns_db, enrich):
    """The contract between the two handlers: every item the enrichment returns is a valid
    EnrichedTask for the dialer, with the same task, config and original body."""
    campaigns_db("c-1", config={**GOOD_CONFIG, "maxCps": 5})
    records = [sqs_record(task(contact=f"k-{i}", attempts=i, metadata={"n": i}), f"m-{i}") for i in range(3)]
    items = enrich(records)
    read_back = [EnrichedTask.from_item(json.loads(json.dumps(i))) for i in items]
    assert all(isinstance(t, EnrichedTask) for t in read_back), read_back
    assert [t.message_id for t in read_back] == ["m-0", "m-1", "m-2"]
    assert [t.body for t in read_back] == [r["body"] for r in records]
    assert [t.task.attempts for t in read_back] == [0, 1, 2]
    assert {t.config.max_cps for t in read_back} == {5.0}


def test_a_paused_campaigns_tasks_go_on_marked_paused(campaigns_db, enrich):
    campaigns_db("paused", status="paused")
    campaigns_db("done", status="completed")
    items = enrich([sqs_record(task(campaign="paused"), "p-1"), sqs_record(task(campaign="done"), "d-1")])
    assert [(i["messageId"], i["campaign"]["status"]) for i in items] == [("p-1", "paused")]
    [read_back] = [EnrichedTask.from_item(i) for i in items]
    assert isinstance(read_back, EnrichedTask) and read_back.paused


def test_every_bad_record_is_dropped_with_its_reason_and_counted(campaigns_db, enrich, capsys, caplog):
    campaigns_db("c-1")
    campaigns_db("stopped", status="stopped")
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
        "campaign_inactive": sqs_record(task(campaign="stopped"), "b-9"),
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
    assert json.loads(items[0]["body"])["metadata"] == {"name": "שלום 👋"}


def test_database_down_raises_and_the_next_call_recovers(monkeypatch):
    import psycopg

    from db_migrate.migrate import apply_migrations
    from enrich_dial_task import handler as module
    from local_pipeline.services import ThrowawayPostgres

    pg = ThrowawayPostgres().start()
    try:
        with psycopg.connect(pg.server.dsn(), autocommit=True) as conn:
            apply_migrations(conn)
            conn.execute(
                "INSERT INTO campaigns (id, name, status, config) VALUES ('c-1', 'one', 'active', %s)",
                (json.dumps(GOOD_CONFIG),),
            )
        env = EnrichmentEnv.variables(host=pg.server.host, port=pg.port, name="postgres", campaign_cache_ttl_seconds=0)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        new_container(module)
        ctx = LocalLambdaContext("enrich-dial-task", 5)
        assert len(module.handler([sqs_record(task())], ctx)) == 1
        pg.stop()
        with pytest.raises(psycopg.OperationalError):
            module.handler([sqs_record(task())], ctx)
        pg.start()
        assert len(module.handler([sqs_record(task())], ctx)) == 1
    finally:
        new_container(module)
        pg.destroy()
