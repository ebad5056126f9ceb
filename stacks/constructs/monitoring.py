"""Alarms that page through an encrypted SNS topic, and one dashboard with the same signals."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnCondition, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared.observability import Dimension, Metric

PERIOD = Duration.minutes(1)
ERROR_RATE_PERCENT = 5
RATE_LIMITED_SHARE_PERCENT = 20
# Partial failures (some records of a batch, e.g. the dialer's batchItemFailures while the worker is
# down) and timeouts show here within a minute; otherwise only the DLQ would tell, minutes later.
PIPE_FAILURE_METRICS = (
    "ExecutionFailed",
    "ExecutionPartiallyFailed",
    "ExecutionTimeout",
    "EnrichmentStageFailed",
    "TargetStageFailed",
    "TargetStagePartiallyFailed",
)
RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_SHARE = 0.1
RDS_CONNECTIONS_SHARE = 0.8
CACHE_CPU_PERCENT = 80
CACHE_MEMORY_PERCENT = 80


class Monitoring(Construct):
    """`alarms` maps a short name to each alarm; every alarm notifies `topic`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        alarm_email: str | None,
        alarm_email_condition: CfnCondition | None = None,
        metrics_namespace: str,
        dialer_service: str,
        call_events_service: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # CloudWatch acts for this account's alarms only (no confused deputy): the same conditions
        # on the key and on the topic.
        from_own_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
        }
        self.key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="Alarm topic encryption")
        # CloudWatch publishes alarm notifications itself, so it must be able to use the key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsUseKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
                conditions=from_own_alarms,
            )
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True)
        # The topic policy holds the enforce-SSL Deny; the Allow for CloudWatch is written out
        # rather than left to the account-level default.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=[self.topic.topic_arn],
                conditions=from_own_alarms,
            )
        )
        self.subscription: sns.Subscription | None = None
        if alarm_email:
            self.subscription = self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            if alarm_email_condition is not None:
                self.subscription.node.default_child.cfn_options.condition = alarm_email_condition  # type: ignore[union-attr]
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self.metrics_namespace = metrics_namespace
        self.dialer_service = dialer_service
        self.call_events_service = call_events_service
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)

    # -- alarms ------------------------------------------------------------------------------

    def _alarm(
        self,
        name: str,
        metric: cw.Metric | cw.MathExpression,
        *,
        threshold: float,
        description: str,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
    ) -> cw.Alarm:
        alarm = metric.create_alarm(
            self,
            name,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        self.alarms[name] = alarm
        return alarm

    def watch_queues(self, *, queue: sqs.IQueue, dlq: sqs.IQueue, oldest_message_seconds: int) -> None:
        self.queue, self.dlq = queue, dlq
        self._alarm(
            "DlqMessages",
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=0,
            description="Dial tasks reached the DLQ after maxReceiveCount receives",
        )
        self._alarm(
            "OldestDialTask",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            threshold=oldest_message_seconds,
            evaluation_periods=3,
            description=f"The oldest dial task has waited over {oldest_message_seconds} s: the pipe is stalled",
        )

    def watch_function(self, name: str, function: lambda_.IFunction) -> None:
        errors = function.metric_errors(period=PERIOD, statistic="Sum")
        invocations = function.metric_invocations(period=PERIOD, statistic="Sum")
        self._alarm(
            f"{name}ErrorRate",
            cw.MathExpression(
                expression="100 * errors / invocations",
                using_metrics={"errors": errors, "invocations": invocations},
                label=f"{name} error rate (%)",
                period=PERIOD,
            ),
            threshold=ERROR_RATE_PERCENT,
            evaluation_periods=3,
            description=f"{name}: more than {ERROR_RATE_PERCENT}% of invocations fail",
        )
        self._alarm(
            f"{name}Throttles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            threshold=0,
            description=f"{name} is throttled at its reserved concurrency",
        )

    def pipe_metric(self, pipe_name: str, metric_name: str) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/EventBridge/Pipes",
            metric_name=metric_name,
            dimensions_map={"PipeName": pipe_name},
            statistic="Sum",
            period=PERIOD,
        )

    def watch_pipe(self, pipe_name: str) -> None:
        self.pipe_name = pipe_name
        for metric_name in PIPE_FAILURE_METRICS:
            self._alarm(
                f"Pipe{metric_name}",
                self.pipe_metric(pipe_name, metric_name),
                threshold=0,
                description=f"Pipe {metric_name}: records go back to the queue and retry",
            )

    def watch_database(
        self, instance: rds.DatabaseInstance, *, allocated_storage_gb: int, max_connections: int
    ) -> None:
        self.database = instance
        self._alarm(
            "DatabaseCpu",
            instance.metric_cpu_utilization(period=Duration.minutes(5)),
            threshold=RDS_CPU_PERCENT,
            evaluation_periods=3,
            description=f"RDS CPU above {RDS_CPU_PERCENT}%",
        )
        self._alarm(
            "DatabaseFreeStorage",
            instance.metric_free_storage_space(period=Duration.minutes(5)),
            threshold=allocated_storage_gb * RDS_FREE_STORAGE_SHARE * 1024**3,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            description=f"RDS free storage below {RDS_FREE_STORAGE_SHARE:.0%} of the allocated storage",
        )
        self._alarm(
            "DatabaseConnections",
            instance.metric_database_connections(period=Duration.minutes(5), statistic="Maximum"),
            threshold=int(max_connections * RDS_CONNECTIONS_SHARE),
            description=f"RDS connections above {RDS_CONNECTIONS_SHARE:.0%} of max_connections ({max_connections})",
        )

    def cache_metric(self, node_id: str, metric_name: str, statistic: str = "Maximum") -> cw.Metric:
        return cw.Metric(
            namespace="AWS/ElastiCache",
            metric_name=metric_name,
            dimensions_map={"CacheClusterId": node_id},
            statistic=statistic,
            period=Duration.minutes(5),
        )

    def watch_cache(self, node_ids: Sequence[str]) -> None:
        # Alarms on every node: after a failover the primary is another node.
        self.cache_nodes = list(node_ids)
        for index, node_id in enumerate(self.cache_nodes, start=1):
            self._alarm(
                f"CacheCpuNode{index}",
                self.cache_metric(node_id, "EngineCPUUtilization"),
                threshold=CACHE_CPU_PERCENT,
                evaluation_periods=3,
                description=f"Cache node {index}: engine CPU above {CACHE_CPU_PERCENT}%",
            )
            self._alarm(
                f"CacheMemoryNode{index}",
                self.cache_metric(node_id, "DatabaseMemoryUsagePercentage"),
                threshold=CACHE_MEMORY_PERCENT,
                description=f"Cache node {index}: memory above {CACHE_MEMORY_PERCENT}%",
            )
            self._alarm(
                f"CacheEvictionsNode{index}",
                self.cache_metric(node_id, "Evictions", "Sum"),
                threshold=0,
                description=f"Cache node {index} evicts keys: pacing state or dial claims may be lost",
            )

    def dialer_metric(self, metric_name: str, reason: str | None = None) -> cw.Metric:
        dimensions = {Dimension.SERVICE: self.dialer_service, **({Dimension.REASON: reason} if reason else {})}
        return cw.Metric(
            namespace=self.metrics_namespace,
            metric_name=metric_name,
            dimensions_map=dimensions,
            statistic="Sum",
            period=PERIOD,
        )

    def service_metric(
        self, service: str, metric_name: str, statistic: str = "Sum", period: Duration = PERIOD
    ) -> cw.Metric:
        return cw.Metric(
            namespace=self.metrics_namespace,
            metric_name=metric_name,
            dimensions_map={Dimension.SERVICE: service},
            statistic=statistic,
            period=period,
        )

    def search(self, service: str, metric_name: str, dimension: str, statistic: str, label: str) -> cw.MathExpression:
        """One line per value of `dimension` (per campaign, per reason): a dashboard search."""
        return cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{self.metrics_namespace},{dimension},{Dimension.SERVICE}}} {Dimension.SERVICE}="{service}" '
                f"MetricName=\"{metric_name}\"', '{statistic}', {int(PERIOD.to_seconds())})"
            ),
            using_metrics={},
            label=label,
            period=PERIOD,
        )

    def watch_call_events(self, *, queue: sqs.IQueue, dlq: sqs.IQueue, silent_minutes: int) -> None:
        self.call_events_queue, self.call_events_dlq = queue, dlq
        self._alarm(
            "CallEventsDlqMessages",
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=0,
            description="Call events reached their DLQ: the handler failed on them maxReceiveCount times",
        )
        window = Duration.minutes(silent_minutes)
        self._alarm(
            "CallEventsSilent",
            cw.MathExpression(
                expression="IF(FILL(sent, 0) > 0 AND FILL(events, 0) == 0, 1, 0)",
                using_metrics={
                    "sent": self.service_metric(self.dialer_service, Metric.DIALS_SENT, period=window),
                    "events": self.service_metric(
                        self.call_events_service, Metric.CALL_EVENTS_PROCESSED, period=window
                    ),
                },
                label="Dials sent without call events",
                period=window,
            ),
            threshold=1,
            comparison=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=f"Dials were sent but no call event came for {silent_minutes} minutes: the worker stopped "
            "reporting, and live calls count until their leases end",
        )

    def watch_dialer_metrics(self) -> None:
        self._alarm(
            "RateLimitedShare",
            cw.MathExpression(
                expression="100 * deferred / (sent + deferred)",
                # Only the tasks that waited for a slot: not Redis outages, windows, live calls or pauses.
                using_metrics={
                    # "rate": the dialer's deferral reason for a task that waited for a slot.
                    "deferred": self.dialer_metric(Metric.DEFERRED, reason="rate"),
                    "sent": self.dialer_metric(Metric.DIALS_SENT),
                },
                label="Deferred by the rate limit (%)",
                period=PERIOD,
            ),
            threshold=RATE_LIMITED_SHARE_PERCENT,
            evaluation_periods=5,
            description=f"Over {RATE_LIMITED_SHARE_PERCENT}% of dial tasks wait for a slot: MaxCps is the bottleneck",
        )
        self._alarm(
            "RedisUnavailable",
            self.dialer_metric(Metric.REDIS_UNAVAILABLE),
            threshold=0,
            description="The dialer cannot reach Redis and paces each container locally",
        )
        self._alarm(
            "ClaimsKeyspaceReset",
            self.dialer_metric(Metric.CLAIMS_RESET),
            threshold=0,
            description="Redis came back without its dial claims (a failover lost writes): calls in flight "
            "may be re-sent; the dialers hold until the call ledger has put its claims back (RestoreTimedOut if not).",
        )
        self._alarm(
            "RestoreTimedOut",
            self.dialer_metric(Metric.RESTORE_TIMED_OUT),
            threshold=0,
            description="Redis came back empty and the call ledger did not restore its claims within "
            "restore_hold_seconds: dialing went on without them, so only the worker's Idempotency-Key stops a "
            "second call to a contact dialed before the loss. Check the ledger function and its queue.",
        )

    # -- dashboard ---------------------------------------------------------------------------

    def build_dashboard(self, *, functions: dict[str, lambda_.IFunction]) -> None:
        """Queue depth and achieved CPS on top, then one row per concern. Call after the watch_* methods."""
        sent = self.dialer_metric(Metric.DIALS_SENT)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue depth",
                left=[
                    self.queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="dial-tasks visible"),
                    self.queue.metric_approximate_number_of_messages_not_visible(period=PERIOD, label="in flight"),
                    self.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, label="DLQ"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Achieved CPS (DialsSent per second)",
                left=[
                    cw.MathExpression(
                        expression="sent / PERIOD(sent)", using_metrics={"sent": sent}, label="calls/s", period=PERIOD
                    )
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmWidget(title="Rate-limited share", alarm=self.alarms["RateLimitedShare"], width=8),
            cw.AlarmWidget(title="Redis unavailable", alarm=self.alarms["RedisUnavailable"], width=8),
            cw.AlarmWidget(title="Oldest dial task", alarm=self.alarms["OldestDialTask"], width=8),
        )
        self.dashboard.add_widgets(
            *[
                cw.GraphWidget(
                    title=f"{name}: errors and throttles",
                    left=[function.metric_errors(period=PERIOD), function.metric_throttles(period=PERIOD)],
                    right=[function.metric_duration(period=PERIOD, statistic="p99")],
                    width=12,
                )
                for name, function in functions.items()
            ]
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Pipe failures",
                left=[self.pipe_metric(self.pipe_name, m) for m in PIPE_FAILURE_METRICS],
                right=[self.pipe_metric(self.pipe_name, "EventCount")],
                width=12,
            ),
            cw.AlarmWidget(title="DLQ messages", alarm=self.alarms["DlqMessages"], width=12),
        )
        # The closed loop: live calls, each campaign's answer rate and pace, the worker's reports.
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Live calls (fleet, and per campaign)",
                left=[
                    self.service_metric(self.dialer_service, Metric.LIVE_CALLS, "Maximum").with_(
                        label="fleet (dialer)"
                    ),
                    self.search(self.dialer_service, Metric.LIVE_CALLS, Dimension.CAMPAIGN, "Maximum", "per campaign"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Answer rate and pace factor per campaign",
                left=[
                    self.search(
                        self.call_events_service, Metric.ANSWER_RATE, Dimension.CAMPAIGN, "Average", "answer rate"
                    )
                ],
                right=[
                    self.search(
                        self.call_events_service, Metric.PACE_FACTOR, Dimension.CAMPAIGN, "Minimum", "pace factor"
                    )
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Call events",
                left=[
                    self.service_metric(self.call_events_service, Metric.CALL_EVENTS_PROCESSED).with_(
                        label="processed"
                    ),
                    self.service_metric(self.call_events_service, Metric.CALL_EVENTS_DUPLICATE).with_(label="repeated"),
                    self.service_metric(self.call_events_service, Metric.CALL_EVENTS_DROPPED).with_(label="dropped"),
                ],
                right=[
                    self.call_events_queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="queued"),
                    self.call_events_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, label="DLQ"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Deferrals by reason",
                left=[self.search(self.dialer_service, Metric.DEFERRED, Dimension.REASON, "Sum", "deferred")],
                width=8,
            ),
            cw.AlarmWidget(title="Dials without call events", alarm=self.alarms["CallEventsSilent"], width=8),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="RDS",
                left=[self.database.metric_cpu_utilization(), self.database.metric_database_connections()],
                right=[self.database.metric_free_storage_space()],
                width=12,
            ),
            cw.GraphWidget(
                title="ElastiCache",
                left=[self.cache_metric(n, "EngineCPUUtilization") for n in self.cache_nodes]
                + [self.cache_metric(n, "DatabaseMemoryUsagePercentage") for n in self.cache_nodes],
                right=[self.cache_metric(n, "Evictions", "Sum") for n in self.cache_nodes],
                width=12,
            ),
        )

    # -- the call ledger ---------------------------------------------------------------------

    def watch_ledger(
        self,
        *,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        function: lambda_.IFunction,
        ledger_service: str,
        oldest_message_seconds: int,
    ) -> None:
        """The ledger's alarms and its dashboard row. Call after build_dashboard: the row goes last."""
        self._alarm(
            "CallRecordsDlqMessages",
            dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=0,
            description="Call records reached their DLQ: the ledger failed to write them maxReceiveCount times. "
            "Fix the cause, then redrive them (they merge, none is written twice)",
        )
        self._alarm(
            "OldestCallRecord",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            threshold=oldest_message_seconds,
            evaluation_periods=3,
            description=f"A call record has waited over {oldest_message_seconds} s: the ledger cannot write "
            "(PostgreSQL down?). Dialing goes on; records wait in the queue",
        )
        orphans = self.service_metric(ledger_service, "LedgerOrphans", "Maximum", period=Duration.minutes(5))
        self._alarm(
            "LedgerOrphans",
            orphans,
            threshold=0,
            evaluation_periods=3,
            description="Call outcomes without their attempt's record for over 15 minutes: a producer's "
            "records are not arriving (or a worker reports calls the dialer never sent)",
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Call ledger: records",
                left=[
                    self.service_metric(ledger_service, "LedgerRecordsWritten").with_(label="written (new rows)"),
                    self.service_metric(ledger_service, "LedgerRecordsMerged").with_(label="merged"),
                    self.service_metric(ledger_service, "LedgerRecordsDropped").with_(label="dropped"),
                    self.service_metric(ledger_service, "RetriesEnqueued").with_(label="retries enqueued"),
                ],
                right=[orphans.with_(label="orphans")],
                width=8,
            ),
            cw.GraphWidget(
                title="Call ledger: records queue",
                left=[
                    queue.metric_approximate_age_of_oldest_message(
                        period=PERIOD, statistic="Maximum", label="oldest (s)"
                    )
                ],
                right=[
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="queued"),
                    dlq.metric_approximate_number_of_messages_visible(period=PERIOD, label="DLQ"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Call ledger: writer",
                left=[function.metric_errors(period=PERIOD), function.metric_throttles(period=PERIOD)],
                right=[function.metric_duration(period=PERIOD, statistic="p99")],
                width=8,
            ),
        )
