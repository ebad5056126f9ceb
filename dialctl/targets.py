"""Where dialctl acts: the local pipeline (`--local`, found through the state file `dialctl local
up` writes) or a deployed stack (`--stack DialPipeline-<env>`, found through its CloudFormation
outputs). Both answer the same questions, so the commands do not care which one they talk to.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialctl.activity import DEFERRALS_WINDOW_S
from dialer_worker.live_rate import parse as parse_rate
from shared.observability import CALL_EVENTS_SERVICE, DIALER_SERVICE, Dimension, Metric
from stacks.outputs import Output

ROOT = Path(__file__).resolve().parent.parent
STATE_FILE_VARIABLE = "DIALCTL_STATE_FILE"
MINUTE_S = 60  # CloudWatch's standard resolution, which the dialer's EMF metrics have

# The stack outputs dialctl reads; a stack without one of them is an older version.
OUTPUTS = (
    Output.DIAL_TASKS_QUEUE_URL,
    Output.DIAL_TASKS_DLQ_URL,
    Output.LIVE_MAX_CPS_PARAMETER_NAME,
    Output.MAX_CPS_CEILING,
    Output.DASHBOARD_NAME,
    Output.METRICS_NAMESPACE,
)


class Failure(Exception):
    """Something dialctl was asked to do did not happen (exit status 1)."""


class UsageError(Exception):
    """The request itself is wrong (exit status 2)."""


def default_state_file() -> Path:
    return Path(os.environ.get(STATE_FILE_VARIABLE) or ROOT / ".local" / "dialctl-local.json")


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Target:
    """What every command needs from a pipeline. Queue depths and the DLQ are plain SQS."""

    kind = ""
    name = ""
    sqs: Any
    queue_url = ""
    dlq_url = ""

    def queue_depth(self, url: str) -> dict[str, int]:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def reconnect(self) -> None:
        """New SQS clients (after a fork)."""

    def queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def redrive(self, max_per_second: int | None = None) -> str:
        kwargs: dict[str, Any] = {"SourceArn": self.queue_arn(self.dlq_url)}
        if max_per_second:
            kwargs["MaxNumberOfMessagesPerSecond"] = max_per_second
        return self.sqs.start_message_move_task(**kwargs)["TaskHandle"]

    def move_tasks(self) -> list[dict]:
        return self.sqs.list_message_move_tasks(SourceArn=self.queue_arn(self.dlq_url), MaxResults=10)["Results"]

    # Implemented per target.
    def ceiling(self) -> float:
        raise NotImplementedError

    def ceiling_hint(self) -> str:
        """Where the ceiling comes from and how it is raised."""
        raise NotImplementedError

    def live_raw(self) -> str | None:
        raise NotImplementedError

    def set_live(self, value: float) -> None:
        raise NotImplementedError

    def effective_cps(self, live: float) -> float | None:
        raise NotImplementedError

    def dials_last_minute(self) -> dict:
        raise NotImplementedError

    def redis_health(self) -> dict:
        raise NotImplementedError

    def closed_loop(self) -> dict:
        """Live calls (fleet and per campaign), answer rate and pace factor per campaign."""
        raise NotImplementedError

    def activity(self) -> dict | None:
        """What the dialers did lately: {"measured_cps": calls sent per second over a recent
        window, "deferred": deferrals by reason over the last 5 minutes}; None when unknown."""
        raise NotImplementedError

    def known_campaigns(self, ids: set[str]) -> set[str] | None:
        raise NotImplementedError

    def where(self) -> dict:
        return {}

    def live(self) -> float:
        """The live value the dialer applies: min(live, ceiling); a missing one is the ceiling."""
        raw = self.live_raw()
        ceiling = self.ceiling()
        if raw is None:
            return ceiling
        try:
            return min(ceiling, parse_rate(raw))
        except ValueError as exc:
            raise Failure(
                f"the live MAX_CPS holds {raw!r}, not a number (the dialer keeps its last value): {exc}"
            ) from None


class LocalTarget(Target):
    kind = "local"

    def __init__(self, state: dict) -> None:
        import redis

        self.state = state
        self.name = f"local ({state.get('env', '?')})"
        self.reconnect()
        self.queue_url = state["queue_url"]
        self.dlq_url = state["dlq_url"]
        self.redis = redis.Redis.from_url(state["redis_url"], socket_timeout=1, socket_connect_timeout=1)

    def reconnect(self) -> None:
        import boto3
        from botocore.config import Config

        # The local endpoint takes any credentials; never a real account's.
        self.sqs = boto3.client(
            "sqs", endpoint_url=self.state["sqs_endpoint"], region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
            config=Config(
                max_pool_connections=32, retries={"max_attempts": 3, "mode": "standard"}, parameter_validation=False
            ),
        )  # fmt: skip

    @classmethod
    def from_state_file(cls, path: Path) -> LocalTarget:
        state = read_state(path)
        if state is None:
            raise Failure(f"no local pipeline: {path} is missing or unreadable; start one with `dialctl local up`")
        if not pid_alive(state.get("pid")):
            raise Failure(f"the local pipeline in {path} (pid {state.get('pid')}) is not running; `dialctl local up`")
        return cls(state)

    def ceiling(self) -> float:
        return float(self.state["max_cps"])

    def ceiling_hint(self) -> str:
        return (
            f"the local pipeline's ceiling, {self.ceiling():g}, is `dialctl local up --max-cps` (default: the "
            f"{self.state.get('env', '?')} settings' max_cps); stop it and start it again with a higher --max-cps"
        )

    def live_raw(self) -> str | None:
        value = self.redis.get(self.state["live_rate_key"])
        return value.decode() if isinstance(value, bytes) else value

    def set_live(self, value: float) -> None:
        self.redis.set(self.state["live_rate_key"], f"{value:g}")

    def effective_cps(self, live: float) -> float | None:
        # The dialers' shared rate (lowered by 429/503 from the worker); absent means MAX_CPS.
        shared = self.redis.get(self.state["rate_key"])
        return min(live, float(shared)) if shared is not None else live

    def dials_last_minute(self) -> dict:
        import requests

        stats = requests.get(f"{self.state['worker_url']}/stats", timeout=2).json()
        return {"total": stats["calls"], "by_campaign": stats["callsByCampaign"], "source": "worker stand-in"}

    def redis_health(self) -> dict:
        started = time.perf_counter()
        try:
            self.redis.ping()
        except Exception as exc:  # any client or network error is the answer
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, "ping_ms": round((time.perf_counter() - started) * 1000, 2)}

    def closed_loop(self) -> dict:
        """Read from the keys the dialers and the call-events handler share (shared/live_calls.py),
        as one snapshot: every count and window in one MULTI/EXEC, against one instant. The scripts
        that write them change a call's fleet and campaign entries together, so no sample shows a
        campaign with more live calls than the fleet. (Campaigns are found by SCAN first; one that
        appears in between is left out of this sample, its calls already in the fleet's count.)"""
        from shared import live_calls

        prefix = self.state["redis_key_prefix"]
        pattern = f"{live_calls.tag(prefix)}:*"
        keys = [k.decode() if isinstance(k, bytes) else k for k in self.redis.scan_iter(match=pattern, count=1000)]
        live_ids = _campaigns(keys, live_calls.campaign_live_key(prefix, "x"))
        pace_ids = _campaigns(keys, live_calls.pace_key(prefix, "x"))
        outcome_ids = _campaigns(keys, live_calls.outcomes_key(prefix, "x"))
        now_us = int(time.time() * 1_000_000)  # members whose lease has not ended
        snapshot = self.redis.pipeline(transaction=True)
        snapshot.zcount(live_calls.fleet_live_key(prefix), now_us, "+inf")
        for campaign in live_ids:
            snapshot.zcount(live_calls.campaign_live_key(prefix, campaign), now_us, "+inf")
        for campaign in pace_ids:
            snapshot.hget(live_calls.pace_key(prefix, campaign), "factor")
        for campaign in outcome_ids:
            snapshot.lrange(live_calls.outcomes_key(prefix, campaign), 0, -1)
        replies = iter(snapshot.execute())
        fleet = int(next(replies))

        per_campaign: dict[str, dict] = {}
        for campaign in live_ids:
            per_campaign.setdefault(campaign, {})["live_calls"] = int(next(replies))
        for campaign in pace_ids:
            factor = next(replies)
            per_campaign.setdefault(campaign, {})["pace_factor"] = float(factor) if factor is not None else 1.0
        for campaign in outcome_ids:
            outcomes = [o.decode() if isinstance(o, bytes) else o for o in next(replies)]
            answered = sum(o in live_calls.ANSWERED_OUTCOMES for o in outcomes)
            per_campaign.setdefault(campaign, {})["answer_rate"] = (
                round(answered / len(outcomes), 3) if outcomes else None
            )
            per_campaign[campaign]["outcomes"] = len(outcomes)
        return {"fleet_live_calls": fleet, "campaigns": per_campaign, "source": "Redis"}

    def activity(self) -> dict | None:
        # Published by `local up` from its dialers' reports (dialctl/activity.py).
        from dialctl import activity

        return activity.read(self.redis, self.state["redis_key_prefix"])

    def known_campaigns(self, ids: set[str]) -> set[str] | None:
        import psycopg

        try:
            with psycopg.connect(self.state["postgres_dsn"], connect_timeout=2) as conn:
                rows = conn.execute("SELECT id FROM campaigns WHERE id = ANY(%s)", (sorted(ids),)).fetchall()
        except psycopg.Error:
            return None
        return {row[0] for row in rows}

    def where(self) -> dict:
        keys = ("postgres_dsn", "redis_url", "redis_key_prefix", "sqs_endpoint", "queue_url", "dlq_url", "worker_url")
        return {key: self.state[key] for key in keys}


class StackTarget(Target):
    kind = "stack"

    def __init__(
        self,
        stack_name: str,
        *,
        region: str | None = None,
        database_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`clock`: now, for the windows of the measured rate and the deferrals."""
        import boto3

        self.name = stack_name
        self.clock = clock
        self.region = region
        session = boto3.session.Session(region_name=region)
        self.cloudformation = session.client("cloudformation")
        self.sqs = session.client("sqs")
        self.ssm = session.client("ssm")
        self.cloudwatch = session.client("cloudwatch")
        self.database_url = database_url
        self.outputs = self._outputs(stack_name)
        self.queue_url = self.outputs[Output.DIAL_TASKS_QUEUE_URL]
        self.dlq_url = self.outputs[Output.DIAL_TASKS_DLQ_URL]

    def reconnect(self) -> None:
        import boto3

        self.sqs = boto3.session.Session(region_name=self.region).client("sqs")

    def _outputs(self, stack_name: str) -> dict[str, str]:
        from botocore.exceptions import ClientError

        try:
            [stack] = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            raise Failure(f"stack {stack_name}: {exc.response['Error'].get('Message', exc)}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        missing = [name for name in OUTPUTS if name not in outputs]
        if missing:
            raise Failure(
                f"stack {stack_name} has no output {', '.join(missing)}: deploy this version of the stack first"
            )
        return outputs

    def ceiling(self) -> float:
        return float(self.outputs[Output.MAX_CPS_CEILING])

    def ceiling_hint(self) -> str:
        return f"the MaxCps stack parameter; raising it takes a deploy: cdk deploy {self.name} --parameters MaxCps=N"

    def live_raw(self) -> str | None:
        try:
            return self.ssm.get_parameter(Name=self.outputs[Output.LIVE_MAX_CPS_PARAMETER_NAME])["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return None

    def set_live(self, value: float) -> None:
        self.ssm.put_parameter(
            Name=self.outputs[Output.LIVE_MAX_CPS_PARAMETER_NAME], Value=f"{value:g}", Type="String", Overwrite=True
        )

    def _metric(self, name: str, statistic: str, minutes: int) -> list[dict]:
        end = datetime.now(UTC) + timedelta(minutes=1)  # the current minute's datapoints too
        reply = self.cloudwatch.get_metric_statistics(
            Namespace=self.outputs[Output.METRICS_NAMESPACE],
            MetricName=name,
            Dimensions=[{"Name": Dimension.SERVICE, "Value": DIALER_SERVICE}],
            StartTime=end - timedelta(minutes=minutes + 1),
            EndTime=end,
            Period=60,
            Statistics=[statistic],
        )
        return sorted(reply["Datapoints"], key=lambda p: p["Timestamp"])

    def effective_cps(self, live: float) -> float | None:
        # The lowest EffectiveCps a dialer reported in the latest minute with data (5 min back).
        points = self._metric(Metric.EFFECTIVE_CPS, "Minimum", 5)
        return min(live, points[-1]["Minimum"]) if points else None

    def dials_last_minute(self) -> dict:
        # DialsSent has no campaign dimension: the fleet's total for the latest full minute.
        points = self._metric(Metric.DIALS_SENT, "Sum", 2)
        total = int(points[-1]["Sum"]) if points else 0
        return {"total": total, "by_campaign": None, "source": "CloudWatch DialsSent (no campaign dimension)"}

    def redis_health(self) -> dict:
        # ElastiCache sits in the VPC: its health is what the dialers report.
        points = self._metric(Metric.REDIS_UNAVAILABLE, "Maximum", 5)
        if not points:
            return {"ok": None, "detail": "no RedisUnavailable data in the last 5 minutes (no dialer ran)"}
        down = points[-1]["Maximum"] > 0
        return {"ok": not down, "detail": "from the dialers' RedisUnavailable metric"}

    def closed_loop(self) -> dict:
        """The call-events function's metrics: LiveCalls (fleet), AnswerRate and PaceFactor (by campaignId)."""
        namespace = self.outputs[Output.METRICS_NAMESPACE]
        end = datetime.now(UTC) + timedelta(minutes=1)

        def latest(name: str, dimensions: list[dict]) -> float | None:
            reply = self.cloudwatch.get_metric_statistics(
                Namespace=namespace, MetricName=name, Dimensions=dimensions, StartTime=end - timedelta(minutes=6),
                EndTime=end, Period=60, Statistics=["Average"],
            )  # fmt: skip
            points = sorted(reply["Datapoints"], key=lambda p: p["Timestamp"])
            return points[-1]["Average"] if points else None

        service = [{"Name": Dimension.SERVICE, "Value": CALL_EVENTS_SERVICE}]
        per_campaign: dict[str, dict] = {}
        for name, field in (
            (Metric.ANSWER_RATE, "answer_rate"),
            (Metric.PACE_FACTOR, "pace_factor"),
            (Metric.LIVE_CALLS, "live_calls"),
        ):
            listed = self.cloudwatch.list_metrics(Namespace=namespace, MetricName=name)["Metrics"]
            for metric in listed:
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                if Dimension.CAMPAIGN in dims:
                    per_campaign.setdefault(dims[Dimension.CAMPAIGN], {})[field] = latest(name, metric["Dimensions"])
        return {
            "fleet_live_calls": latest(Metric.LIVE_CALLS, service),
            "campaigns": per_campaign,
            "source": "CloudWatch (call-events metrics, latest minute in the last 5)",
        }

    def activity(self) -> dict | None:
        return {"measured_cps": self._measured_cps(), "deferred": self._deferrals()}

    def _measured_cps(self) -> dict:
        """DialsSent over the last full minute, per second. The dialer's EMF metrics have
        CloudWatch's standard resolution, one minute: no shorter window can be read from them."""
        end = self.clock().replace(second=0, microsecond=0)
        start = end - timedelta(seconds=MINUTE_S)
        reply = self.cloudwatch.get_metric_statistics(
            Namespace=self.outputs[Output.METRICS_NAMESPACE], MetricName=Metric.DIALS_SENT,
            Dimensions=[{"Name": Dimension.SERVICE, "Value": DIALER_SERVICE}],
            StartTime=start, EndTime=end, Period=MINUTE_S, Statistics=["Sum"],
        )  # fmt: skip
        points = [p for p in reply["Datapoints"] if start <= p["Timestamp"] < end]
        dials = int(sum(p["Sum"] for p in points)) if points else None
        return {
            "calls_per_second": round(dials / MINUTE_S, 2) if dials is not None else None,
            "dials": dials,
            "window_seconds": MINUTE_S,
            "from": start.isoformat(timespec="seconds"),
            "to": end.isoformat(timespec="seconds"),
            "source": "CloudWatch DialsSent, the last full minute (standard resolution: 60 s)"
            + ("" if points else "; no data: no dialer ran then, or its metrics are not in yet"),
        }

    def _deferrals(self) -> dict:
        """The dialer's Deferred metric by its Reason dimension, summed over the last 5 minutes."""
        namespace = self.outputs[Output.METRICS_NAMESPACE]
        service = {"Name": Dimension.SERVICE, "Value": DIALER_SERVICE}
        reasons: set[str] = set()
        for page in self.cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=namespace, MetricName=Metric.DEFERRED, Dimensions=[service]
        ):
            for metric in page["Metrics"]:
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                if Dimension.REASON in dims and dims.get(Dimension.SERVICE) == DIALER_SERVICE:
                    reasons.add(dims[Dimension.REASON])
        end = self.clock()
        ordered = sorted(reasons)
        by_reason: dict[str, int] = {}
        if ordered:
            queries = [
                {"Id": f"r{i}", "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": Metric.DEFERRED,
                               "Dimensions": [service, {"Name": Dimension.REASON, "Value": reason}]},
                    "Period": MINUTE_S, "Stat": "Sum"}}
                for i, reason in enumerate(ordered)
            ]  # fmt: skip
            reply = self.cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=end - timedelta(seconds=DEFERRALS_WINDOW_S), EndTime=end
            )
            for result in reply["MetricDataResults"]:
                total = int(sum(result.get("Values", [])))
                if total:
                    by_reason[ordered[int(result["Id"][1:])]] = total
        return {
            "by_reason": by_reason,
            "total": sum(by_reason.values()),
            "window_seconds": int(DEFERRALS_WINDOW_S),
            "source": "CloudWatch Deferred by Reason, the last 5 minutes",
        }

    def known_campaigns(self, ids: set[str]) -> set[str] | None:
        if not self.database_url:
            return None  # RDS is in the VPC; --database-url reaches it through a tunnel
        import psycopg

        try:
            with psycopg.connect(self.database_url, connect_timeout=3) as conn:
                rows = conn.execute("SELECT id FROM campaigns WHERE id = ANY(%s)", (sorted(ids),)).fetchall()
        except psycopg.Error:
            return None
        return {row[0] for row in rows}

    def where(self) -> dict:
        return {"stack": self.name, **self.outputs}


def _campaigns(keys: list[str], pattern_key: str) -> list[str]:
    """The campaign ids among `keys` shaped like `pattern_key` (its last part is the id)."""
    head = pattern_key.rsplit(":", 1)[0] + ":"
    return sorted(key[len(head) :] for key in keys if key.startswith(head))


def masked_dlq_messages(target: Target, limit: int) -> list[dict]:
    """Up to `limit` DLQ messages, phone numbers masked. SQS has no peek: each is received once
    (ApproximateReceiveCount + 1, which the DLQ, without a redrive policy, acts on in no way), kept
    hidden for the listing so the next receives return others, and made visible again at once.
    Receiving with VisibilityTimeout=0 instead would let the same ten come back each time."""
    from shared.masking import mask_phone

    seen: dict[str, dict] = {}
    handles: list[str] = []
    empty_receives = 0
    try:
        while len(seen) < limit and empty_receives < 2:
            reply = target.sqs.receive_message(
                QueueUrl=target.dlq_url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=30,
                AttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            empty_receives = 0 if messages else empty_receives + 1
            for message in messages:
                handles.append(message["ReceiptHandle"])
                try:
                    body = json.loads(message["Body"])
                except ValueError:
                    body = None
                task = body if isinstance(body, dict) else {}
                attributes = message.get("Attributes", {})
                seen[message["MessageId"]] = {
                    "messageId": message["MessageId"],
                    "campaignId": task.get("campaignId"),
                    "contactId": task.get("contactId"),
                    "phoneNumber": mask_phone(task.get("phoneNumber")) if task else "<body is not a task>",
                    "attempts": task.get("attempts"),
                    "receiveCount": int(attributes.get("ApproximateReceiveCount", 0)),
                    "sentAt": _iso(attributes.get("SentTimestamp")),
                }
    finally:
        _release(target, handles)
    return list(seen.values())[:limit]


def _release(target: Target, handles: Iterable[str]) -> None:
    from botocore.exceptions import ClientError

    for handle in handles:
        try:
            target.sqs.change_message_visibility(QueueUrl=target.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
        except ClientError:
            pass  # it reappears after 30 s anyway


def _iso(milliseconds: str | None) -> str | None:
    if not milliseconds:
        return None
    return datetime.fromtimestamp(int(milliseconds) / 1000, UTC).isoformat(timespec="seconds")
