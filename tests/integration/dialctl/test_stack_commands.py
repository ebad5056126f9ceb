"""dialctl --stack against moto (CloudFormation outputs, SQS, SSM, CloudWatch): the AWS side of
each command. moto 5.2.5 does not implement StartMessageMoveTask, so redrive is checked against a
recording stand-in for those two calls only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from dialctl import cli
from dialctl.targets import StackTarget

STACK = "DialPipeline-dev"
REGION = "us-east-1"


@pytest.fixture
def stack(monkeypatch):
    """A tiny stack in moto whose outputs name real (moto) queues and parameter, as the real stack's do."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName="dial-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName="dial-tasks",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="DialPipeline-dev-LiveMaxCps-abc", Value="20", Type="String")
        outputs = {
            "DialTasksQueueUrl": queue,
            "DialTasksDlqUrl": dlq,
            "LiveMaxCpsParameterName": "DialPipeline-dev-LiveMaxCps-abc",
            "MaxCpsCeiling": "20",
            "DashboardName": STACK,
            "MetricsNamespace": "DialPipeline/dev",
        }
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(template)
        )
        yield {"sqs": sqs, "ssm": ssm, "queue": queue, "dlq": dlq, **outputs}


def run(capsys, *argv):
    code = cli.main([*argv, "--stack", STACK, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_rate_reads_and_writes_the_ssm_parameter_under_the_ceiling(stack, capsys):
    code, doc = run(capsys, "rate", "show")
    assert code == 0 and (doc["ceiling"], doc["live"]) == (20, 20)
    code, doc = run(capsys, "rate", "set", "7.5")
    assert code == 0 and doc["live"] == 7.5
    assert stack["ssm"].get_parameter(Name=stack["LiveMaxCpsParameterName"])["Parameter"]["Value"] == "7.5"
    assert cli.main(["rate", "set", "25", "--stack", STACK]) == 2
    assert f"cdk deploy {STACK} --parameters MaxCps=N" in capsys.readouterr().err
    assert stack["ssm"].get_parameter(Name=stack["LiveMaxCpsParameterName"])["Parameter"]["Value"] == "7.5"
    code, doc = run(capsys, "rate", "set", "0")
    assert code == 0 and doc["stopped"]


def test_enqueue_sends_batches_with_the_campaign_as_message_group(stack, tmp_path, capsys):
    path = tmp_path / "c.csv"
    lines = ["campaignId,contactId,phoneNumber"] + [f"camp-{i % 2},c{i},+1415555{i:04d}" for i in range(23)]
    path.write_text("\n".join(lines + ["camp-0,bad,+1"]) + "\n")
    code, doc = run(capsys, "enqueue", str(path), "--processes", "1")
    assert code == 1 and doc["sent"] == 23 and [r["line"] for r in doc["rejected"]] == [25]
    assert doc["campaigns_checked"] is False  # RDS is not reachable from here without --database-url
    received = []
    while True:
        batch = stack["sqs"].receive_message(QueueUrl=stack["queue"], MaxNumberOfMessages=10,
                                             MessageSystemAttributeNames=["MessageGroupId"]).get("Messages", [])  # fmt: skip
        if not batch:
            break
        received += batch
    assert len(received) == 23
    for message in received:
        assert message["Attributes"]["MessageGroupId"] == json.loads(message["Body"])["campaignId"]


def test_a_stack_without_the_outputs_is_an_operational_failure(stack, capsys):
    assert cli.main(["rate", "show", "--stack", "DialPipeline-nope"]) == 1
    assert "DialPipeline-nope" in capsys.readouterr().err


def test_status_reads_queues_parameter_and_metrics(stack, capsys):
    stack["sqs"].send_message(QueueUrl=stack["queue"], MessageBody="{}")
    stack["sqs"].send_message(QueueUrl=stack["dlq"], MessageBody="{}")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    dimensions = [{"Name": "service", "Value": "dialer-worker"}]
    cloudwatch.put_metric_data(Namespace="DialPipeline/dev", MetricData=[
        {"MetricName": "EffectiveCps", "Dimensions": dimensions, "Value": 12.0, "Timestamp": now},
        {"MetricName": "DialsSent", "Dimensions": dimensions, "Value": 40, "Timestamp": now},
        {"MetricName": "RedisUnavailable", "Dimensions": dimensions, "Value": 0, "Timestamp": now},
    ])  # fmt: skip
    code, doc = run(capsys, "status")
    assert code == 0, doc["problems"]
    assert doc["queue"]["visible"] == 1 and doc["dlq"] == 1
    assert doc["max_cps"] == {"ceiling": 20, "live": 20}
    assert doc["effective_cps"] == 12.0
    assert doc["dials_last_minute"]["total"] == 40 and doc["dials_last_minute"]["by_campaign"] is None
    assert doc["redis"]["ok"] is True
    assert doc["stack_outputs"]["DashboardName"] == STACK


def test_dlq_list_and_redrive(stack, capsys, monkeypatch):
    body = {"campaignId": "c", "contactId": "x", "phoneNumber": "+14155550123", "attempts": 1}
    stack["sqs"].send_message(QueueUrl=stack["dlq"], MessageBody=json.dumps(body))
    code, doc = run(capsys, "dlq", "list")
    assert code == 0 and doc["messages"][0]["phoneNumber"] == "+*******0123"
    assert doc["messages"][0]["attempts"] == 1

    def tasks(self):
        return [{"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 1, "ApproximateNumberOfMessagesToMove": 1}]

    # Target.redrive's own SQS call is the one line moto cannot serve; its arguments are checked here.
    sent = {}
    monkeypatch.setattr(StackTarget, "move_tasks", tasks)
    real_redrive = StackTarget.redrive

    def recording_redrive(self, max_per_second=None):
        class Client:
            def start_message_move_task(inner, **kwargs):
                sent.update(kwargs)
                return {"TaskHandle": "handle-1"}

        original, self.sqs = self.sqs, Client()
        arn = original.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.queue_arn = lambda url: arn
        try:
            return real_redrive(self, max_per_second)
        finally:
            self.sqs = original

    monkeypatch.setattr(StackTarget, "redrive", recording_redrive)
    code, doc = run(capsys, "dlq", "redrive", "--max-per-second", "50")
    assert code == 0 and doc["task_handle"] == "handle-1" and doc["task"]["Status"] == "COMPLETED"
    assert sent == {"SourceArn": sent["SourceArn"], "MaxNumberOfMessagesPerSecond": 50}
    assert sent["SourceArn"].endswith(":dial-dlq")


def test_status_measures_dials_over_the_last_full_minute_and_sums_deferrals_by_reason(stack):
    """CloudWatch keeps the dialer's EMF metrics at one-minute resolution: the measured rate is
    DialsSent of the last full minute over 60 s; deferrals are Deferred by Reason over 5 minutes."""
    now = datetime(2026, 12, 2, 6, 30, 20, tzinfo=UTC)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    service = {"Name": "service", "Value": "dialer-worker"}

    def point(name: str, value: float, at: datetime, reason: str | None = None) -> dict:
        dimensions = [service] + ([{"Name": "Reason", "Value": reason}] if reason else [])
        return {"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": at}

    cloudwatch.put_metric_data(Namespace="DialPipeline/dev", MetricData=[
        point("DialsSent", 100, datetime(2026, 12, 2, 6, 29, 5, tzinfo=UTC)),  # the last full minute
        point("DialsSent", 80, datetime(2026, 12, 2, 6, 29, 50, tzinfo=UTC)),
        point("DialsSent", 40, datetime(2026, 12, 2, 6, 30, 10, tzinfo=UTC)),  # this minute: not yet full
        point("DialsSent", 999, datetime(2026, 12, 2, 6, 28, 30, tzinfo=UTC)),  # the minute before
        point("Deferred", 7, datetime(2026, 12, 2, 6, 29, 0, tzinfo=UTC), "rate"),
        point("Deferred", 600, datetime(2026, 12, 2, 6, 27, 0, tzinfo=UTC), "live_calls"),
        point("Deferred", 10, datetime(2026, 12, 2, 6, 30, 0, tzinfo=UTC), "live_calls"),
        point("Deferred", 3, datetime(2026, 12, 2, 6, 20, 0, tzinfo=UTC), "paused"),  # over 5 minutes ago
        point("Deferred", 5000, datetime(2026, 12, 2, 6, 29, 0, tzinfo=UTC)),  # the total, no Reason
    ])  # fmt: skip
    doc = cli.status_document(StackTarget(STACK, region=REGION, clock=lambda: now))
    assert doc["measured_cps"]["calls_per_second"] == 3.0 and doc["measured_cps"]["dials"] == 180
    assert (doc["measured_cps"]["from"], doc["measured_cps"]["to"]) == ("2026-12-02T06:29:00+00:00",
                                                                        "2026-12-02T06:30:00+00:00")  # fmt: skip
    assert doc["deferred"]["by_reason"] == {"live_calls": 610, "rate": 7} and doc["deferred"]["total"] == 617
    lines = "\n".join(cli.status_lines(doc))
    assert "measured 3.0 calls/s over the last full minute (06:29-06:30 UTC) (180 sent)" in lines
    assert "configured" in lines.split("measured")[0].splitlines()[-1]
    assert "deferred     617 in the last 5 minutes: live_calls 610, rate 7" in lines


def test_status_says_when_cloudwatch_has_no_dials_for_the_minute(stack, capsys):
    code, doc = run(capsys, "status")
    assert doc["measured_cps"]["calls_per_second"] is None and "no data" in doc["measured_cps"]["source"]
    assert doc["deferred"] == {**doc["deferred"], "by_reason": {}, "total": 0}
    cli.main(["status", "--stack", STACK])
    assert "measured ? over the last full minute" in capsys.readouterr().out
