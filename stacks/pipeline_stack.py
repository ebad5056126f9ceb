"""One environment of the dial-task pipeline, composed as in docs/design.md's diagram."""

from __future__ import annotations

from aws_cdk import (
    CfnCondition,
    CfnOutput,
    CfnParameter,
    Fn,
    RemovalPolicy,
    Stack,
)
from aws_cdk import (
    aws_ec2 as ec2,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_logs as logs,
)
from aws_cdk import (
    aws_ssm as ssm,
)
from constructs import Construct

from shared.observability import CALL_EVENTS_SERVICE, DIALER_SERVICE, LEDGER_SERVICE
from stacks.constructs.cache import Cache
from stacks.constructs.database import Database
from stacks.constructs.functions import Functions
from stacks.constructs.ledger import Ledger
from stacks.constructs.messaging import CallEventsQueues, DialTaskPipe, DialTaskQueues
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.network import Network, egress_only_by_rules
from stacks.outputs import Output
from stacks.settings import EMAIL_PATTERN, Settings


class DialPipelineStack(Stack):
    """scheduler -> SQS -> Pipe (filter, batch) -> enrichment (RDS) -> dialer (ElastiCache) -> worker."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, construct_id, stack_name=settings.stack_name, **kwargs)
        self.settings = settings
        self.retention = retention_for(settings.log_retention_days)
        self.data_removal = RemovalPolicy.RETAIN if settings.retain_on_delete else RemovalPolicy.DESTROY

        self._parameters()
        self._data_stores()
        self._ledger()
        self._functions_and_pipe()
        self._grants()
        self._connections()
        self._ledger_access()
        # A fresh environment is usable after `cdk deploy` alone: the schema exists before traffic.
        # Its own group too: the egress rules to the database and the endpoint live there. The
        # database construct holds the secrets' attachments, whose passwords the migration sets.
        self.functions.run_migrations_after(
            self.database, self.network, self.functions.migration.security_group, before=[self.ledger.function]
        )
        self._monitoring()
        self._outputs()

    def _parameters(self) -> None:
        """What a deploy may set without a code change: the rate ceiling and its live value, the
        fleet's live-call cap, the worker's URL, where alarms go."""
        settings = self.settings
        self.max_cps = CfnParameter(
            self,
            "MaxCps",
            type="Number",
            default=settings.max_cps,
            min_value=1,
            description="Global calls-per-second limit across every dialer (the dialer's MAX_CPS)",
        )
        # Runtime control: the live MAX_CPS, which operators turn without a deploy (`dialctl rate
        # set`). It starts at the ceiling; the dialer uses min(live, MaxCps); 0 stops all dialing.
        # CloudFormation names it (unique per stack), the outputs tell operators which it is.
        self.live_max_cps = ssm.StringParameter(
            self,
            "LiveMaxCps",
            string_value=self.max_cps.value_as_string,
            description="Live calls-per-second limit (0 stops dialing); the dialer uses min(this, MaxCps)",
        )

        # The fleet's live calls at once (trunk channels); 0 is no limit. A campaign's own cap is
        # its config's maxConcurrentCalls.
        self.max_concurrent_calls = CfnParameter(
            self,
            "MaxConcurrentCalls",
            type="Number",
            default=settings.max_concurrent_calls,
            min_value=0,
            description="Live calls at once across the fleet, 0 for no limit (the dialer's MAX_CONCURRENT_CALLS)",
        )

        self.worker_url = CfnParameter(
            self,
            "WorkerUrl",
            type="String",
            allowed_pattern=settings.worker_url_pattern,
            constraint_description=f"an http(s) base URL on port {settings.node_worker_port}, e.g. https://dial-worker.example.com",
            description="Base URL of the Node.js dial worker; the dialer POSTs to {url}/dial (its NODE_WORKER_URL)",
            # No default unless settings name one: then deploy demands a value.
            default=settings.node_worker_url or None,
        )

        # Alarms must reach someone: required where settings say so (no default, deploy demands it).
        email_pattern = EMAIL_PATTERN if settings.alarm_email_required else f"^$|{EMAIL_PATTERN}"
        email_default = settings.alarm_email or (None if settings.alarm_email_required else "")
        self.alarm_email = CfnParameter(
            self,
            "AlarmEmail",
            type="String",
            allowed_pattern=email_pattern,
            constraint_description="an e-mail address" + ("" if settings.alarm_email_required else ", or empty"),
            description="E-mail address subscribed to the alarm topic (confirm the subscription e-mail)",
            default=email_default,
        )
        self.has_alarm_email: CfnCondition | None = None
        if not settings.alarm_email_required:
            self.has_alarm_email = CfnCondition(
                self,
                "HasAlarmEmail",
                expression=Fn.condition_not(Fn.condition_equals(self.alarm_email.value_as_string, "")),
            )

    def _data_stores(self) -> None:
        """The network, the campaigns database, the cache, and the two queues with their DLQs."""
        settings, retention, data_removal = self.settings, self.retention, self.data_removal
        self.network = Network(
            self,
            "Network",
            cidr=settings.vpc_cidr,
            max_azs=settings.max_azs,
            nat_gateways=settings.nat_gateways,
            flow_log_retention=retention,
        )
        self.database = Database(
            self,
            "Database",
            vpc=self.network.vpc,
            subnets=self.network.data_subnets,
            settings=settings.database,
            secrets_manager_endpoint=self.network.secrets_manager_endpoint,
            rotation_subnets=self.network.function_subnets,
            log_retention=retention,
            removal_policy=data_removal,
        )
        self.cache = Cache(
            self,
            "Cache",
            vpc=self.network.vpc,
            subnets=self.network.data_subnets,
            settings=settings.cache,
            removal_policy=data_removal,
        )
        self.queues = DialTaskQueues(
            self,
            "Queues",
            settings=settings.queue,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            removal_policy=data_removal,
        )
        self.call_events_queues = CallEventsQueues(
            self,
            "CallEventsQueues",
            settings=settings.queue,
            visibility_timeout_seconds=settings.call_events_visibility_timeout_seconds,
            removal_policy=data_removal,
        )

    def _ledger(self) -> None:
        """The call ledger: its records queue (the producers' environments name it) and writer."""
        self.ledger = Ledger(
            self,
            "Ledger",
            settings=self.settings,
            vpc=self.network.vpc,
            subnets=self.network.function_subnets,
            database=self.database,
            cache=self.cache,
            dial_tasks_queue=self.queues.queue,
            log_retention=self.retention,
            removal_policy=self.data_removal,
        )

    def _ledger_access(self) -> None:
        """Producers send records (SendMessage, over the SQS endpoint); the writer reaches the
        instance directly, Redis, Secrets Manager and SQS (retries), nothing else."""
        enrichment, dialer, _, call_events = self._all_functions()
        writer = self.ledger.writer
        self.ledger.grant_send(enrichment, dialer, call_events)
        self.database.allow_direct(writer.function)
        self.cache.connections.allow_default_port_from(writer.function, "Valkey over TLS from the call ledger")
        self.network.allow_secrets_manager_from(writer.function)
        self.network.allow_sqs_from(enrichment.function, call_events.function, writer.function)
        egress_only_by_rules(writer.security_group)

    def _functions_and_pipe(self) -> None:
        settings, retention = self.settings, self.retention
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            vpc=self.network.vpc,
            subnets=self.network.function_subnets,
            database=self.database,
            cache=self.cache,
            defer_queue=self.queues.queue,
            max_cps=self.max_cps.value_as_string,
            worker_url=self.worker_url.value_as_string,
            max_cps_parameter_name=self.live_max_cps.parameter_name,
            max_concurrent_calls=self.max_concurrent_calls.value_as_string,
            call_events_queue=self.call_events_queues.queue,
            log_retention=retention,
            call_records_queue=self.ledger.queue,
        )

        self.pipe = DialTaskPipe(
            self,
            "Pipe",
            source=self.queues.queue,
            enrichment=self.functions.enrichment.function,
            target=self.functions.dialer.function,
            settings=settings.pipe,
            log_retention=retention,
        )

    def _grants(self) -> None:
        enrichment, dialer, migration, call_events = self._all_functions()
        # Grants: secrets by ARN, read-only; the dialer re-queues deferred tasks. The enrichment
        # reads only its read-only user's secret; the migration logs in as the admin and sets the
        # reader's and the ledger writer's passwords from their secrets.
        self.database.reader_secret.grant_read(enrichment.function)
        self.database.secret.grant_read(migration.function)
        self.database.reader_secret.grant_read(migration.function)
        self.database.ledger_writer_secret.grant_read(migration.function)
        self.cache.auth_token.grant_read(dialer.function)
        self.cache.auth_token.grant_read(call_events.function)
        self.cache.recipient_hash_key.grant_read(dialer.function)
        self.queues.queue.grant_send_messages(dialer.function)
        # The dialer reads the live MAX_CPS, one parameter, one action (not grant_read's four).
        dialer.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadLiveMaxCps", actions=["ssm:GetParameter"], resources=[self.live_max_cps.parameter_arn]
            )
        )

    def _connections(self) -> None:
        """Security group to security group; the one CIDR rule is the dialer's to the worker."""
        settings = self.settings
        enrichment, dialer, migration, call_events = self._all_functions()
        self.database.allow_clients(enrichment.function)
        self.database.allow_direct(migration.function)
        self.cache.connections.allow_default_port_from(dialer.function, "Valkey over TLS from the dialer")
        # The call-events function reaches Redis, and Secrets Manager for Redis's AUTH token:
        # nothing else (Lambda itself polls its queue).
        self.cache.connections.allow_default_port_from(call_events.function, "Valkey over TLS from call events")
        self.network.allow_secrets_manager_from(
            enrichment.function,
            dialer.function,
            migration.function,
            call_events.function,
            self.database.rotation_security_group,
        )
        self.network.allow_sqs_from(dialer.function)
        egress_only_by_rules(
            enrichment.security_group,
            migration.security_group,
            call_events.security_group,
            self.database.rotation_security_group,
        )
        # The worker is outside the VPC at an address only known at deploy time (WorkerUrl), reached
        # through NAT: the one egress rule to a CIDR, on the worker's port, for the dialer alone.
        dialer.function.connections.allow_to_any_ipv4(
            ec2.Port.tcp(settings.node_worker_port), "Node.js dial worker (WorkerUrl), outside the VPC"
        )
        self.network.allow_ssm_from(dialer.function)

    def _all_functions(self):
        f = self.functions
        return f.enrichment, f.dialer, f.migration, f.call_events

    def _monitoring(self) -> None:
        settings = self.settings
        enrichment, dialer, _, call_events = self._all_functions()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            dashboard_name=settings.stack_name,
            alarm_email=self.alarm_email.value_as_string,
            alarm_email_condition=self.has_alarm_email,
            metrics_namespace=settings.metrics_namespace,
            dialer_service=DIALER_SERVICE,
            call_events_service=CALL_EVENTS_SERVICE,
        )
        self.monitoring.watch_queues(
            queue=self.queues.queue,
            dlq=self.queues.dlq,
            oldest_message_seconds=settings.queue.oldest_message_alarm_seconds,
        )
        self.monitoring.watch_function("Enrichment", enrichment.function)
        self.monitoring.watch_function("Dialer", dialer.function)
        self.monitoring.watch_function("CallEvents", call_events.function)
        self.monitoring.watch_call_events(
            queue=self.call_events_queues.queue,
            dlq=self.call_events_queues.dlq,
            silent_minutes=settings.call_events_silence_alarm_minutes,
        )
        self.monitoring.watch_pipe(self.pipe.pipe_name)
        self.monitoring.watch_database(
            self.database.instance,
            allocated_storage_gb=settings.database.allocated_storage_gb,
            max_connections=settings.database.max_connections,
        )
        self.monitoring.watch_cache(self.cache.node_ids())
        self.monitoring.watch_dialer_metrics()
        self.monitoring.watch_function("Ledger", self.ledger.function)
        self.monitoring.build_dashboard(
            functions={"Enrichment": enrichment.function, "Dialer": dialer.function, "CallEvents": call_events.function}
        )
        self.monitoring.watch_ledger(
            queue=self.ledger.queue,
            dlq=self.ledger.dlq,
            function=self.ledger.function,
            ledger_service=LEDGER_SERVICE,
            oldest_message_seconds=settings.call_records_oldest_message_alarm_seconds,
        )

    def _outputs(self) -> None:
        settings = self.settings
        # What the operator CLI (`dialctl --stack <name>`) reads to find everything else.
        outputs = {
            Output.DIAL_TASKS_QUEUE_URL: (self.queues.queue.queue_url, "The dial-tasks queue (enqueue here)"),
            Output.DIAL_TASKS_DLQ_URL: (self.queues.dlq.queue_url, "The dial-tasks dead-letter queue"),
            Output.LIVE_MAX_CPS_PARAMETER_NAME: (self.live_max_cps.parameter_name, "SSM parameter: the live MAX_CPS"),
            Output.MAX_CPS_CEILING: (self.max_cps.value_as_string, "The MaxCps parameter: the live value's ceiling"),
            Output.CALL_EVENTS_QUEUE_URL: (
                self.call_events_queues.queue.queue_url,
                "The call-events queue: the worker sends one message per finished call here",
            ),
            Output.CALL_EVENTS_SEND_POLICY_ARN: (
                self.call_events_queues.send_policy.managed_policy_arn,
                "Managed policy granting sqs:SendMessage on the call-events queue: attach it to the worker's role",
            ),
            Output.MAX_CONCURRENT_CALLS_LIMIT: (
                self.max_concurrent_calls.value_as_string,
                "Live calls at once across the fleet (0: no limit)",
            ),
            Output.DASHBOARD_NAME: (self.monitoring.dashboard.dashboard_name, "The CloudWatch dashboard"),
            Output.METRICS_NAMESPACE: (settings.metrics_namespace, "Namespace of the functions' metrics"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, str(name), value=value, description=description)


# The retention periods CloudWatch Logs accepts, up to a year.
_RETENTIONS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def retention_for(days: int) -> logs.RetentionDays:
    """The shortest retention CloudWatch Logs accepts that keeps logs at least `days` days."""
    for allowed in sorted(_RETENTIONS):
        if allowed >= days:
            return _RETENTIONS[allowed]
    raise ValueError(f"log retention of {days} days is above the supported {max(_RETENTIONS)}")
