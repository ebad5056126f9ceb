"""The enrichment's ledger records against real PostgreSQL and SQS (moto): a `dropped` record
for each drop that names its call, none for one that does not, a malformed retry policy is
campaign_misconfigured, and records SQS did not acknowledge fail the whole batch."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from support.records_queue import RecordsQueue, RefusingSqs

from enrich_dial_task import core
from enrich_dial_task.clients import build_clients
from enrich_dial_task.env import EnrichmentEnv
from shared.call_records import RecordsNotSent
from shared.dial_task import call_id_for

from .conftest import GOOD_CONFIG, sqs_record, task

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sqs(sqs_endpoint):
    return boto3.client(
        "sqs", endpoint_url=sqs_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )


def env_for(campaigns_db, queue_url):
    server = campaigns_db.server
    return EnrichmentEnv(
        host=server.host,
        port=server.port,
        name=campaigns_db.dbname,
        user=server.user,
        campaign_cache_ttl_seconds=0,
        call_records_queue_url=queue_url,
    )


def test_each_drop_that_names_its_call_gets_a_dropped_record(campaigns_db, sqs):
    campaigns_db("c-1")
    campaigns_db("c-off", status="inactive")
    campaigns_db("c-bad-retry", config={**GOOD_CONFIG, "retry": {"answered": {"afterSeconds": 1, "maxAttempts": 1}}})
    queue = RecordsQueue(sqs)
    env = env_for(campaigns_db, queue.url)
    clients = build_clients(env, sqs=lambda: sqs)
    records = [
        sqs_record(task("c-1", "k-ok", "+14155550100"), "m-ok"),
        sqs_record(task("c-none", "k-1", "+14155550101", attempts=2), "m-unknown"),
        sqs_record(task("c-off", "k-2", "+14155550102"), "m-inactive"),
        sqs_record(task("c-bad-retry", "k-3", "+14155550103"), "m-misconfigured"),
        # Names its call, though its number is not one: recorded with its reason, without the number.
        sqs_record(task("c-1", "k-4", 12345), "m-bad-phone"),
        # Names no call: only its log line and count remain.
        sqs_record({"campaignId": "c-1", "phoneNumber": "+14155550105"}, "m-no-contact"),
        sqs_record("not json", "m-not-json"),
    ]
    try:
        items, report = core.process(records, env, clients, now=NOW)
    finally:
        clients.close()
    assert [i["messageId"] for i in items] == ["m-ok"]
    assert report.records_sent == 4
    got = {(r.call_id, r.disposition, str(r.reason), r.phone_number, r.dropped_at) for r in queue.drain()}
    assert got == {
        (call_id_for("c-none", "k-1", 2), "dropped", "unknown_campaign", "+14155550101", NOW),
        (call_id_for("c-off", "k-2", 0), "dropped", "campaign_inactive", "+14155550102", NOW),
        (call_id_for("c-bad-retry", "k-3", 0), "dropped", "campaign_misconfigured", "+14155550103", NOW),
        (call_id_for("c-1", "k-4", 0), "dropped", "invalid_phone_number", None, NOW),
    }


def test_records_sqs_did_not_acknowledge_fail_the_batch(campaigns_db):
    refusing = RefusingSqs()
    env = env_for(campaigns_db, "https://sqs.example/records")
    clients = build_clients(env, sqs=lambda: refusing)
    try:
        with pytest.raises(RecordsNotSent):
            core.process([sqs_record(task("c-none", "k-1", "+14155550101"), "m-1")], env, clients, now=NOW)
        # A batch without drops sends nothing, so it is not held back.
        campaigns_db("c-1")
        items, _ = core.process([sqs_record(task("c-1", "k-1", "+14155550101"), "m-1")], env, clients, now=NOW)
    finally:
        clients.close()
    assert len(items) == 1 and refusing.calls == 1
