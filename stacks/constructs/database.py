"""RDS PostgreSQL with the campaigns table, its generated secrets and, where needed, RDS Proxy."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from db_migrate.migrate import READER_ROLE, WRITER_ROLE
from stacks.settings import DatabaseSettings

# PostgreSQL's default port, the only one RDS Proxy listens on.
PORT = 5432
ADMIN_USER = "campaigns_admin"
DATABASE_NAME = "campaigns"
# The construct id of CDK's stack-wide LogRetention function (aws-cdk-lib aws-logs/log-retention).
LOG_RETENTION_PROVIDER_ID = "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"


class Database(Construct):
    """The instance, encrypted and SSL-only, with a generated admin secret rotated by a hosted
    function, and the secrets of the enrichment's read-only `campaigns_reader` and of the ledger's
    `call_ledger_writer`, each rotated by the admin.

    `endpoint_host` is where the enrichment connects: the proxy when there is one, otherwise the
    instance (the secret's own `host`). `client_connections` is what a client must be allowed into.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        settings: DatabaseSettings,
        secrets_manager_endpoint: ec2.IInterfaceVpcEndpoint,
        rotation_subnets: ec2.SubnetSelection,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        """`removal_policy` applies to both secrets and the PostgreSQL log group; the instance
        always leaves a snapshot."""
        super().__init__(scope, construct_id)

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="PostgreSQL: campaigns", allow_all_outbound=False
        )
        self._secrets(removal_policy)
        self._instance(vpc, subnets, settings)
        # RDS creates the export's log group itself, kept forever, as soon as the instance logs. Its
        # name holds the instance identifier CloudFormation generates, so the stack cannot create
        # it first; a LogRetention custom resource sets the environment's retention on it instead
        # (and creates it if RDS has not yet).
        self.log_retention = logs.LogRetention(
            self,
            "PostgresqlLogRetention",
            log_group_name=Fn.join("", ["/aws/rds/instance/", self.instance.instance_identifier, "/postgresql"]),
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self._acknowledge_log_retention_provider(deletes_log_group=removal_policy == RemovalPolicy.DESTROY)
        self._rotation(vpc, settings, secrets_manager_endpoint, rotation_subnets)
        self._proxy(vpc, subnets, settings)
        self._acknowledge_instance(settings)

    def _secrets(self, removal_policy: RemovalPolicy) -> None:
        """The admin secret (the instance's master user), the enrichment's read-only one and the
        ledger writer's."""
        # Generated here rather than by Credentials.from_generated_secret, which cannot name the
        # database: with `dbname` in the secret, the functions and the migration connect to
        # `campaigns` instead of falling back to `postgres`.
        self.credentials_secret = rds.DatabaseSecret(
            self,
            "Secret",
            username=ADMIN_USER,
            dbname=DATABASE_NAME,
            # As from_generated_secret does: a changed password policy means a new secret.
            replace_on_password_criteria_changes=True,
        )
        self.credentials_secret.apply_removal_policy(removal_policy)
        # The roles the migrations create NOLOGIN (0002, 0005), each with its own secret, whose
        # password the migration gives it (READER_SECRET_ARN, LEDGER_WRITER_SECRET_ARN).
        self.reader_credentials_secret = self._role_secret("ReaderSecret", READER_ROLE, removal_policy)
        self.writer_credentials_secret = self._role_secret("LedgerWriterSecret", WRITER_ROLE, removal_policy)

    def _role_secret(self, construct_id: str, role: str, removal_policy: RemovalPolicy) -> rds.DatabaseSecret:
        # `masterarn` names the admin secret, with which the multi-user rotation changes the
        # role's password.
        secret = rds.DatabaseSecret(
            self, construct_id, username=role, dbname=DATABASE_NAME, master_secret=self.credentials_secret
        )
        secret.apply_removal_policy(removal_policy)
        return secret

    def _instance(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, settings: DatabaseSettings) -> None:
        """The instance, and the secrets attached to it (they gain host, port and engine)."""
        version = rds.PostgresEngineVersion.of(settings.engine_version, settings.engine_version.split(".")[0])
        engine = rds.DatabaseInstanceEngine.postgres(version=version)
        parameters = rds.ParameterGroup(
            self, "Parameters", engine=engine, parameters={"rds.force_ssl": "1"}, description="SSL only"
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            # No instance identifier: CloudFormation names the instance, so two stacks in one
            # account never collide and a replacement is not blocked by its own name.
            engine=engine,
            instance_type=ec2.InstanceType.of(
                ec2.InstanceClass[settings.instance_class.upper()], ec2.InstanceSize[settings.instance_size.upper()]
            ),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            credentials=rds.Credentials.from_secret(self.credentials_secret),
            database_name=DATABASE_NAME,
            parameter_group=parameters,
            port=PORT,
            storage_encrypted=True,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=settings.max_allocated_storage_gb,
            storage_type=rds.StorageType.GP3,
            multi_az=settings.multi_az,
            deletion_protection=settings.deletion_protection,
            backup_retention=Duration.days(settings.backup_retention_days),
            delete_automated_backups=False,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=(
                Duration.seconds(settings.enhanced_monitoring_seconds) if settings.enhanced_monitoring_seconds else None
            ),
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.secret: secretsmanager.ISecret = self.instance.secret  # type: ignore[assignment]
        self.reader_secret: secretsmanager.ISecret = self.reader_credentials_secret.attach(self.instance)
        self.ledger_writer_secret: secretsmanager.ISecret = self.writer_credentials_secret.attach(self.instance)

    def _rotation(
        self,
        vpc: ec2.IVpc,
        settings: DatabaseSettings,
        secrets_manager_endpoint: ec2.IInterfaceVpcEndpoint,
        rotation_subnets: ec2.SubnetSelection,
    ) -> None:
        """Hosted rotation of the secrets: the admin's by itself, the reader's and the ledger
        writer's by the admin."""
        # The rotation functions run in the VPC and reach Secrets Manager through the endpoint.
        self.rotation_security_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            description="DB secret rotation function",
            # Egress only to the instance and the Secrets Manager endpoint, added with those connections.
            allow_all_outbound=False,
        )
        # No rotation the moment a schedule is created: the deploy-time migration trigger reads
        # the secrets and logs in (and gives the reader its password) while that first rotation
        # would be replacing them. The first rotation comes after `credentials_rotation_days`.
        options: dict[str, Any] = dict(
            automatically_after=Duration.days(settings.credentials_rotation_days),
            rotate_immediately_on_update=False,
            endpoint=secrets_manager_endpoint,
            security_group=self.rotation_security_group,
            vpc_subnets=rotation_subnets,
        )
        self.rotation = self.instance.add_rotation_single_user(**options)
        # Multi-user: logged in as the admin, the rotation alternates campaigns_reader and
        # campaigns_reader_clone (created at the first rotation with campaigns_reader's
        # permissions), so containers holding the previous user's credentials keep working.
        self.reader_rotation = self.instance.add_rotation_multi_user(
            "ReaderRotation", secret=self.reader_secret, **options
        )
        self.ledger_writer_rotation = self.instance.add_rotation_multi_user(
            "LedgerWriterRotation", secret=self.ledger_writer_secret, **options
        )

    def _proxy(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, settings: DatabaseSettings) -> None:
        """RDS Proxy where the settings ask for it, holding both secrets; where clients connect."""
        self.proxy: rds.DatabaseProxy | None = None
        if not settings.use_proxy:
            self.endpoint_host: str | None = None
            self.client_connections: ec2.Connections = self.instance.connections
            return
        self.proxy_security_group = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy for the campaigns database"
        )
        self.proxy = self.instance.add_proxy(
            "Proxy",
            # CloudFormation requires a name; the stack's keeps it unique in the account.
            db_proxy_name=f"{Stack.of(self).stack_name}-campaigns",
            vpc=vpc,
            vpc_subnets=subnets,
            # The proxy lets in only the users whose secret it holds: the enrichment's is the reader.
            secrets=[self.secret, self.reader_secret],
            security_groups=[self.proxy_security_group],
            require_tls=True,
            iam_auth=False,
            borrow_timeout=Duration.seconds(5),
        )
        self.instance.connections.allow_from(self.proxy, ec2.Port.tcp(PORT), "RDS Proxy")
        self.endpoint_host = self.proxy.endpoint
        self.client_connections = self.proxy.connections

    def _acknowledge_instance(self, settings: DatabaseSettings) -> None:
        """The instance's cdk-nag findings that are by design (per environment where they differ)."""
        if settings.enhanced_monitoring_seconds:
            Validations.of(self.instance.node.find_child("MonitoringRole")).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonRDSEnhancedMonitoringRole]",
                    reason="Enhanced Monitoring's role, assumed by monitoring.rds.amazonaws.com only: the AWS "
                    "managed policy is the documented one and lets RDS write OS metrics to the RDSOSMetrics log group.",
                )
            )
        Validations.of(self.instance).acknowledge(
            Acknowledgment(
                id="AwsSolutions-RDS11",
                reason="PostgreSQL keeps port 5432: RDS Proxy only listens on the engine's default port and the "
                "generated secrets (with their port) serve direct and proxied clients alike; only the "
                "enrichment, migration, rotation and proxy security groups may connect.",
            )
        )
        if not settings.multi_az:
            Validations.of(self.instance).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-RDS3",
                    reason="Single-AZ by design in this non-production environment (settings.database.multi_az); "
                    "prod runs Multi-AZ.",
                )
            )
        if not settings.deletion_protection:
            Validations.of(self.instance).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-RDS10",
                    reason="Non-production environment meant to be torn down "
                    "(settings.database.deletion_protection); prod has deletion protection.",
                )
            )

    def _acknowledge_log_retention_provider(self, *, deletes_log_group: bool) -> None:
        """The LogRetention provider is CDK's stack-wide singleton function: its role is CDK's."""
        provider = Stack.of(self).node.try_find_child(LOG_RETENTION_PROVIDER_ID)
        assert provider is not None, "the LogRetention provider moved; update LOG_RETENTION_PROVIDER_ID"
        role = provider.node.find_child("ServiceRole")
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                reason="CDK's LogRetention provider (sets the retention of the RDS-created PostgreSQL log group) "
                "writes its own logs with the basic execution policy; it holds no data-plane permission.",
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="CDK's LogRetention provider: logs:PutRetentionPolicy/DeleteRetentionPolicy on '*', as CDK "
                "writes it for any log group; it changes retention settings only and reads no log data.",
            )
        )
        if deletes_log_group:
            instance = Stack.of(self).get_logical_id(self.instance.node.default_child)  # type: ignore[arg-type]
            Validations.of(policy).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                    f"log-group:/aws/rds/instance/<{instance}>/postgresql:*]",
                    reason="CDK's LogRetention provider deletes the PostgreSQL log group with the stack where data "
                    "is not retained: logs:DeleteLogGroup on that one group, whose ARN ends in ':*' for its streams.",
                )
            )

    def allow_clients(self, *peers: ec2.IConnectable) -> None:
        """Let `peers` reach the database where its clients connect (the proxy if there is one)."""
        for peer in peers:
            self.client_connections.allow_from(peer, ec2.Port.tcp(PORT), "PostgreSQL client")

    def allow_direct(self, *peers: ec2.IConnectable) -> None:
        """Let `peers` reach the instance itself (migrations run DDL, which bypasses the proxy)."""
        for peer in peers:
            self.instance.connections.allow_from(peer, ec2.Port.tcp(PORT), "PostgreSQL migrations")
