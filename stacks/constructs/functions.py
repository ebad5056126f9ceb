"""The pipeline's Lambda functions, each in the VPC with its own role, security group and log
group, their environments written through each function's typed contract, and the deploy-time
migration trigger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations, triggers
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from call_events.env import CallEventsEnv
from db_migrate.env import MigrationEnv
from dialer_worker.env import DialerEnv
from enrich_dial_task.env import EnrichmentEnv
from shared.observability import (
    CALL_EVENTS_SERVICE,
    DIALER_SERVICE,
    ENRICHMENT_SERVICE,
    MIGRATION_SERVICE,
    ObservabilityEnv,
)
from stacks.constructs.bundling import ARCHITECTURE, MIGRATIONS_DIR, RUNTIME, function_code
from stacks.constructs.cache import Cache
from stacks.constructs.database import DATABASE_NAME, Database
from stacks.function_env import call_events_fields, dialer_fields, enrichment_fields, redis_fields
from stacks.settings import FunctionSettings, Settings

# Call events per invocation: one script call each; 10 lets the mapping use no batching window above 1 s.
CALL_EVENTS_BATCH_SIZE = 10
# The bundling copies migrations/ to the package root.
PACKAGED_MIGRATIONS_DIR = "/var/task/migrations"


class PipelineFunction(Construct):
    """One function in the VPC: its own security group, log group, and an execution role that may
    write only to that log group (instead of the managed basic-execution policy's logs:* on *)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: str,
        description: str,
        settings: FunctionSettings,
        environment: Mapping[str, str],
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        log_retention: logs.RetentionDays,
        extra_dirs: Sequence[Path] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # No egress until granted: each connection to a peer group adds its egress rule.
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description=description, allow_all_outbound=False
        )
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # The log group's Arn attribute ends in ":*", which covers its streams.
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{function}.handler.handler",
            code=function_code(function, extra_dirs=extra_dirs),
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            reserved_concurrent_executions=settings.reserved_concurrency,
            environment=dict(environment),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Python 3.13, one version behind on purpose: the package ships bytecode, which only the "
                "runtime's own minor version can compile, and where we build there is a Python 3.13 and no 3.14 "
                "(docs/infrastructure.md). 3.13 is a supported runtime on Amazon Linux 2023.",
            )
        )
        Validations.of(self.role.node.find_child("DefaultPolicy")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Only actions that IAM cannot scope to a resource use '*': the EC2 network-interface "
                "actions Lambda needs to attach the function to its VPC, and X-Ray PutTraceSegments/"
                "PutTelemetryRecords for active tracing.",
            )
        )


class Functions(Construct):
    """The enrichment and the dialer (the pipe's two stages) and the migration function, which a
    trigger runs once the database exists so a fresh environment is usable after `cdk deploy`.

    Each environment is written through the function's contract (`<function>/env.py`), the same
    class the handler reads it with at cold start, from the fields `stacks/function_env.py` maps
    the settings to (as the local runner and the tests do).
    """

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
        defer_queue: sqs.IQueue,
        max_cps: str,
        worker_url: str,
        max_cps_parameter_name: str,
        max_concurrent_calls: str,
        call_events_queue: sqs.IQueue,
        log_retention: logs.RetentionDays,
        call_records_queue: sqs.IQueue | None = None,
    ) -> None:
        """`call_records_queue`: the ledger's, where the enrichment, the dialer and the call
        events send their records (None: no records; only the tests of something else)."""
        super().__init__(scope, construct_id)

        def in_vpc(construct_id: str, **options) -> PipelineFunction:
            return PipelineFunction(
                self, construct_id, vpc=vpc, subnets=subnets, log_retention=log_retention, **options
            )

        def observability(service: str) -> dict[str, str]:
            return ObservabilityEnv.variables(
                service_name=service, metrics_namespace=settings.metrics_namespace, log_level=settings.log_level
            )

        records_url = call_records_queue.queue_url if call_records_queue is not None else None
        # The dialer and the call events share the cache: its TLS endpoint and auth token.
        redis = redis_fields(cache.host, cache.port, tls=True, auth_secret_arn=cache.auth_token.secret_arn)
        self.enrichment = in_vpc(
            "Enrichment",
            function="enrich_dial_task",
            description="Adds campaign config to dial tasks; drops invalid, unknown and inactive ones",
            settings=settings.enrichment,
            environment={
                **observability(ENRICHMENT_SERVICE),
                **EnrichmentEnv.variables(
                    **enrichment_fields(
                        settings,
                        database={
                            # The read-only campaigns_reader: SELECT on campaigns and do_not_call (migrations 0002, 0003).
                            "secret_arn": database.reader_secret.secret_arn,
                            # The proxy's endpoint where there is one; otherwise the secret's own host.
                            "host": database.endpoint_host,
                            "name": DATABASE_NAME,
                        },
                        call_records_queue_url=records_url,
                    )
                ),
            },
        )
        self.dialer = in_vpc(
            "Dialer",
            function="dialer_worker",
            description="Paces dial tasks under the global MAX_CPS and sends them to the Node.js worker",
            settings=settings.dialer,
            environment={
                **observability(DIALER_SERVICE),
                **DialerEnv.variables(
                    **dialer_fields(
                        settings,
                        redis=redis,
                        worker_url=worker_url,
                        defer_queue_url=defer_queue.queue_url,
                        max_cps=max_cps,
                        max_cps_parameter_name=max_cps_parameter_name,
                        max_concurrent_calls=max_concurrent_calls,
                        recipient_hash_key_secret_arn=cache.recipient_hash_key.secret_arn,
                        call_records_queue_url=records_url,
                    )
                ),
            },
        )
        self.call_events = in_vpc(
            "CallEvents",
            function="call_events",
            description="Reads the worker call events: ends live calls, keeps each campaign answer rate and pace",
            settings=settings.call_events,
            environment={
                **observability(CALL_EVENTS_SERVICE),
                **CallEventsEnv.variables(
                    **call_events_fields(settings, redis=redis, call_records_queue_url=records_url)
                ),
            },
        )
        # Lambda polls the queue for the function; the records it cannot use are named in
        # batchItemFailures, and a failed invocation (Redis down) returns the whole batch.
        self.call_events.function.add_event_source(
            event_sources.SqsEventSource(
                call_events_queue,
                batch_size=CALL_EVENTS_BATCH_SIZE,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
                max_concurrency=max(2, settings.call_events.reserved_concurrency),
            )
        )
        self.migration = in_vpc(
            "Migration",
            function="db_migrate",
            description="Applies migrations/ to the campaigns database at deploy time",
            settings=settings.migration,
            environment={
                **observability(MIGRATION_SERVICE),
                # Migrations run DDL against the instance itself, never through the proxy.
                # With each role's secret it gives campaigns_reader and call_ledger_writer LOGIN
                # and that secret's password.
                **MigrationEnv.variables(
                    secret_arn=database.secret.secret_arn,
                    name=DATABASE_NAME,
                    migrations_dir=PACKAGED_MIGRATIONS_DIR,
                    reader_secret_arn=database.reader_secret.secret_arn,
                    ledger_writer_secret_arn=database.ledger_writer_secret.secret_arn,
                ),
            },
            extra_dirs=[MIGRATIONS_DIR],
        )
        self.migration_timeout = Duration.seconds(settings.migration.timeout_seconds)
        self.migration_trigger: triggers.Trigger | None = None

    def run_migrations_after(self, *dependencies: Construct, before: Sequence[Construct] = ()) -> triggers.Trigger:
        """Invoke the migration function on every deploy that changes it, after `dependencies` and
        before the enrichment (and `before`, the ledger writer) is created or updated: their
        users get LOGIN from the migration."""
        self.migration_trigger = triggers.Trigger(
            self,
            "RunMigrations",
            handler=self.migration.function,
            execute_after=list(dependencies),
            execute_before=[self.enrichment.function, *before],
            execute_on_handler_change=True,
            timeout=self.migration_timeout,
        )
        return self.migration_trigger
