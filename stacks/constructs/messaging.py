"""The dial-tasks queue, its DLQ, and the EventBridge Pipe that drains it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.settings import PipeSettings, QueueSettings


def queue_with_dlq(
    scope: Construct,
    queue_id: str,
    *,
    settings: QueueSettings,
    visibility_timeout_seconds: int,
    removal_policy: RemovalPolicy,
) -> tuple[sqs.Queue, sqs.Queue]:
    """An SSE, TLS-only queue and its dead-letter queue (after settings.max_receive_count receives)."""
    dlq = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(settings.dlq_retention_days),
        removal_policy=removal_policy,
    )
    queue = sqs.Queue(
        scope,
        queue_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(settings.retention_days),
        visibility_timeout=Duration.seconds(visibility_timeout_seconds),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=settings.max_receive_count),
        removal_policy=removal_policy,
    )
    return queue, dlq


class DialTaskQueues(Construct):
    """SSE, TLS-only queues. The DLQ is the queue's redrive policy: for an SQS source, Pipes has
    no dead-letter config of its own."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: QueueSettings,
        visibility_timeout_seconds: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        # The visibility timeout is derived in settings from both function timeouts and the batching window.
        self.queue, self.dlq = queue_with_dlq(
            self, "DialTasks", settings=settings, visibility_timeout_seconds=visibility_timeout_seconds,
            removal_policy=removal_policy,
        )  # fmt: skip


class CallEventsQueues(Construct):
    """The worker's call events: SSE, TLS-only, with their own DLQ, and a managed policy the
    worker's role attaches to send to the queue (and nothing else)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: QueueSettings,
        visibility_timeout_seconds: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue, self.dlq = queue_with_dlq(
            self, "CallEvents", settings=settings, visibility_timeout_seconds=visibility_timeout_seconds,
            removal_policy=removal_policy,
        )  # fmt: skip
        self.send_policy = iam.ManagedPolicy(
            self,
            "SendPolicy",
            description="Lets the Node.js worker's role report finished calls to the call-events queue",
            statements=[
                iam.PolicyStatement(sid="SendCallEvents", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
            ],
        )


class DialTaskPipe(Construct):
    """queue -> filter -> batch -> enrichment -> dialer, with its own least-privilege role.

    Pipes writes its log records with the pipe's execution role, so the role may create streams
    and put events in exactly the pipe's log group. Execution data (payloads, with phone numbers)
    is not logged.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: sqs.IQueue,
        enrichment: lambda_.IFunction,
        target: lambda_.IFunction,
        settings: PipeSettings,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self,
            "Role",
            # Only pipes of this account may assume it (no confused deputy).
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
            ),
            description="EventBridge Pipe: dial-tasks queue to enrichment to dialer",
        )
        # Written out rather than via grant helpers so the role holds exactly what Pipes uses.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSourceQueue",
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                resources=[source.queue_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeEnrichmentAndTarget",
                actions=["lambda:InvokeFunction"],
                resources=[enrichment.function_arn, target.function_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WritePipeLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # The log group's Arn attribute ends in ":*", which covers its streams.
                resources=[self.log_group.log_group_arn],
            )
        )
        if source.encryption_master_key is not None:
            source.encryption_master_key.grant_decrypt(self.role)

        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            description="Dial tasks: filter, batch, enrich with campaign config, dial",
            role_arn=self.role.role_arn,
            source=source.queue_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                sqs_queue_parameters=pipes.CfnPipe.PipeSourceSqsQueueParametersProperty(
                    batch_size=settings.batch_size,
                    maximum_batching_window_in_seconds=settings.batching_window_seconds,
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern=settings.filter_pattern_json)]
                ),
            ),
            enrichment=enrichment.function_arn,
            target=target.function_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                # FIRE_AND_FORGET would hide the dialer's failures and batchItemFailures from the pipe.
                lambda_function_parameters=pipes.CfnPipe.PipeTargetLambdaFunctionParametersProperty(
                    invocation_type="REQUEST_RESPONSE"
                )
            ),
            log_configuration=pipes.CfnPipe.PipeLogConfigurationProperty(
                level="ERROR",
                cloudwatch_logs_log_destination=pipes.CfnPipe.CloudwatchLogsLogDestinationProperty(
                    log_group_arn=self.log_group.log_group_arn
                ),
            ),
        )
        # The role's policy must exist before the pipe first polls, or the pipe starts in a failed state.
        self.pipe.node.add_dependency(self.role)

    @property
    def pipe_name(self) -> str:
        # Ref of AWS::Pipes::Pipe is its name, the PipeName dimension of its metrics.
        return self.pipe.ref
