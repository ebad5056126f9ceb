"""The call ledger: the records queue (and its DLQ) every function sends its records to, the
ledger function that writes them to PostgreSQL and enqueues retries, and the daily schedule that
enforces the records' retention."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from call_ledger.core import RETENTION_EVENT_KEY
from call_ledger.env import LedgerEnv
from shared.observability import LEDGER_SERVICE, ObservabilityEnv
from stacks.constructs.cache import Cache
from stacks.constructs.database import DATABASE_NAME, Database
from stacks.constructs.functions import PipelineFunction
from stacks.constructs.messaging import queue_with_dlq
from stacks.function_env import ledger_fields, redis_fields
from stacks.settings import Settings

# Daily, at a quiet hour (UTC): drops the months past retention, creates the next ones.
RETENTION_SCHEDULE = events.Schedule.cron(minute="17", hour="4")


class Ledger(Construct):
    """`queue` is where producers send records (`grant_send` gives a function just that)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        cache: Cache,
        dial_tasks_queue: sqs.IQueue,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue, self.dlq = queue_with_dlq(
            self,
            "Queue",
            settings=settings.queue,
            visibility_timeout_seconds=settings.call_records_visibility_timeout_seconds,
            removal_policy=removal_policy,
        )
        redis = redis_fields(cache.host, cache.port, tls=True, auth_secret_arn=cache.auth_token.secret_arn)
        self.writer = PipelineFunction(
            self,
            "Writer",
            function="call_ledger",
            description="Writes the call ledger records to PostgreSQL and enqueues the retries they call for",
            settings=settings.ledger,
            environment={
                **ObservabilityEnv.variables(
                    service_name=LEDGER_SERVICE,
                    metrics_namespace=settings.metrics_namespace,
                    log_level=settings.log_level,
                ),
                **LedgerEnv.variables(
                    **ledger_fields(
                        settings,
                        # Its own role's secret (migrations/0005), to the instance itself.
                        database={"secret_arn": database.ledger_writer_secret.secret_arn, "name": DATABASE_NAME},
                        redis=redis,
                        dial_tasks_queue_url=dial_tasks_queue.queue_url,
                        recipient_hash_key_secret_arn=cache.recipient_hash_key.secret_arn,
                    )
                ),
            },
            vpc=vpc,
            subnets=subnets,
            log_retention=log_retention,
        )
        self.function: lambda_.Function = self.writer.function
        # A failed batch (PostgreSQL down) comes back after the visibility timeout, and after
        # maxReceiveCount receives goes to the DLQ; the alarms watch both.
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=settings.call_records_batch_size,
                max_batching_window=Duration.seconds(settings.call_records_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=max(2, settings.ledger.reserved_concurrency),
            )
        )
        self.retention_rule = events.Rule(
            self,
            "RetentionSchedule",
            schedule=RETENTION_SCHEDULE,
            description="Enforces the call ledger's retention (call_record_retention_days)",
            targets=[
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object({RETENTION_EVENT_KEY: True}),
                    retry_attempts=2,
                )
            ],
        )
        database.ledger_writer_secret.grant_read(self.function)
        cache.auth_token.grant_read(self.function)
        cache.recipient_hash_key.grant_read(self.function)
        # Retries: sqs:SendMessage on the dial-tasks queue, nothing else (not grant_send_messages'
        # GetQueueAttributes and GetQueueUrl).
        self.writer.role.add_to_policy(
            iam.PolicyStatement(
                sid="EnqueueRetries", actions=["sqs:SendMessage"], resources=[dial_tasks_queue.queue_arn]
            )
        )

    def grant_send(self, *functions: PipelineFunction) -> None:
        """sqs:SendMessage (SendMessageBatch's permission too) on the records queue, and only that."""
        for function in functions:
            function.role.add_to_policy(
                iam.PolicyStatement(
                    sid="SendCallRecords", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]
                )
            )
