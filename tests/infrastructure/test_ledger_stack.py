"""The call ledger in the synthesized stack: the records queue and its DLQ, the writer with its
event source, database and Redis access and least privilege, the retention schedule, the
producers' environments and grants, and the ledger's alarms."""

from __future__ import annotations

import json

from call_ledger.core import RETENTION_EVENT_KEY

from .test_pipeline_stack import alarms, as_list, function, logical_id, policy_statements, resources


def writer(env) -> tuple[str, dict]:
    lid = logical_id(env, "LedgerWriterFunction", "AWS::Lambda::Function")
    return lid, env.template_json["Resources"][lid]["Properties"]


def test_the_records_queue_has_its_dlq_after_max_receive_count(env):
    queue = env.template_json["Resources"][logical_id(env, "LedgerQueue", "AWS::SQS::Queue")]["Properties"]
    dlq = logical_id(env, "LedgerDeadLetterQueue", "AWS::SQS::Queue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": env.settings.queue.max_receive_count,
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == 6 * env.settings.ledger.timeout_seconds


def test_the_writer_reads_the_records_queue_with_batch_item_failures(env):
    fn, props = writer(env)
    assert props["Handler"] == "call_ledger.handler.handler"
    assert props["ReservedConcurrentExecutions"] == env.settings.ledger.reserved_concurrency
    assert props["VpcConfig"]["SubnetIds"]
    [mapping] = [
        m["Properties"]
        for m in resources(env, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fn}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [logical_id(env, "LedgerQueue", "AWS::SQS::Queue"), "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == env.settings.call_records_batch_size


def test_the_writer_environment(env):
    _, props = writer(env)
    variables = props["Environment"]["Variables"]
    own = logical_id(env, "DatabaseLedgerWriterSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    # Its own role (migrations/0005), to the instance itself (no DB_HOST: not the proxy).
    assert variables["DB_SECRET_ARN"] == {"Ref": own}
    assert "DB_HOST" not in variables
    assert variables["DB_NAME"] == "campaigns"
    assert variables["DIAL_TASKS_QUEUE_URL"] == {"Ref": logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue")}
    assert variables["CALL_RECORD_RETENTION_DAYS"] == str(env.settings.call_record_retention_days)
    assert variables["CLAIM_TTL_SECONDS"] == str(env.settings.claim_ttl_seconds)
    assert variables["REDIS_TLS"] == "true"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "call-ledger"


def test_prod_keeps_records_for_the_tcpa_limitations_period(env):
    if env.settings.name == "prod":
        assert env.settings.call_record_retention_days >= 4 * 365 + 1
    assert env.settings.call_record_retention_days >= 1


def test_a_daily_rule_runs_the_retention_on_the_writer(env):
    fn, _ = writer(env)
    [rule] = [
        r["Properties"]
        for lid, r in resources(env, "AWS::Events::Rule").items()
        if lid.startswith("LedgerRetentionSchedule")
    ]
    assert rule["ScheduleExpression"].startswith("cron(") and rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [fn, "Arn"]}
    assert json.loads(target["Input"]) == {RETENTION_EVENT_KEY: True}
    permissions = [
        p["Properties"]
        for p in resources(env, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fn, "Arn"]}
    ]
    assert [p["Principal"] for p in permissions] == ["events.amazonaws.com"]


def test_the_writer_reads_only_its_role_secret_the_redis_token_and_the_recipient_hash_key(env):
    """Not the admin's secret. The recipient hash key: a restore puts the recipient counts back,
    hashed as the dialer does."""
    own = logical_id(env, "DatabaseLedgerWriterSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    token = logical_id(env, "CacheAuthToken", "AWS::SecretsManager::Secret")
    recipient = logical_id(env, "CacheRecipientHashKey", "AWS::SecretsManager::Secret")
    read = sorted(
        r["Ref"]
        for s in policy_statements(env, "LedgerWriterRole")
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    )
    assert read == sorted([own, token, recipient])
    actions = {a for s in policy_statements(env, "LedgerWriterRole") for a in as_list(s["Action"])}
    assert not any(a.startswith(("s3:", "dynamodb:", "ssm:")) for a in actions)
    assert "sqs:*" not in actions


def test_every_producer_names_the_records_queue(env):
    queue = {"Ref": logical_id(env, "LedgerQueue", "AWS::SQS::Queue")}
    for name in ("Enrichment", "Dialer", "CallEvents"):
        _, props = function(env, name)
        assert props["Environment"]["Variables"]["CALL_RECORDS_QUEUE_URL"] == queue, name


def test_the_ledger_alarms(env):
    found = {lid: props for lid, props in alarms(env).items() if lid.startswith("Monitoring")}
    names = {
        "MonitoringCallRecordsDlqMessages": 0,
        "MonitoringOldestCallRecord": env.settings.call_records_oldest_message_alarm_seconds,
        "MonitoringLedgerOrphans": 0,
    }
    for prefix, threshold in names.items():
        [props] = [p for lid, p in found.items() if lid.startswith(prefix)]
        assert props["Threshold"] == threshold, prefix
    dashboard = json.dumps(resources(env, "AWS::CloudWatch::Dashboard"))
    assert "Call ledger: records" in dashboard and "LedgerRecordsWritten" in dashboard
