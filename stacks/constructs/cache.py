"""ElastiCache for Valkey: the dialer's pacing state and dial claims."""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.settings import CacheSettings

ENGINE = "valkey"
ENGINE_VERSION = "8.0"


class Cache(Construct):
    """A replication group (cluster mode disabled: the pacing keys share one hash tag anyway),
    encrypted in transit and at rest, with an AUTH token kept in Secrets Manager.

    The secret's SecretString is the raw token (no JSON), which is what the dialer reads and what
    the replication group resolves through a dynamic reference at deploy time.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        settings: CacheSettings,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.port = settings.port
        self.node_count = 1 + settings.replicas

        self.auth_token = secretsmanager.Secret(
            self,
            "AuthToken",
            description="ElastiCache AUTH token (raw string) for the dialer",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                # AUTH tokens allow only printable characters without @ " / and spaces.
                exclude_punctuation=True,
                password_length=64,
            ),
            removal_policy=removal_policy,
        )
        Validations.of(self.auth_token).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Secrets Manager has no managed rotation for ElastiCache AUTH tokens: a rotation must "
                "call ModifyReplicationGroup with AuthTokenUpdateStrategy ROTATE then SET while clients "
                "switch over, which is a planned operation (docs/infrastructure.md), not a scheduled one.",
            )
        )

        # The recipient limit keys its Redis counters by a keyed hash of the number, so the cache
        # never holds phone numbers; this is the key.
        self.recipient_hash_key = secretsmanager.Secret(
            self,
            "RecipientHashKey",
            description="HMAC key for the dialer's per-recipient counters in Redis",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64),
            removal_policy=removal_policy,
        )
        Validations.of(self.recipient_hash_key).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="A new key would give every number new counters: for 24 h after a rotation the "
                "per-recipient daily limit would start from zero, so the key is changed only as a planned "
                "operation, never on a schedule.",
            )
        )

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="ElastiCache: dialer pacing", allow_all_outbound=False
        )
        self.connections = ec2.Connections(
            security_groups=[self.security_group], default_port=ec2.Port.tcp(settings.port)
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="Isolated subnets of the dial pipeline",
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
        )
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description="Dialer pacing and dial claims",
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            cache_node_type=settings.node_type,
            num_cache_clusters=self.node_count,
            automatic_failover_enabled=settings.replicas > 0,
            multi_az_enabled=settings.multi_az,
            port=settings.port,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            auth_token=self.auth_token.secret_value.unsafe_unwrap(),
            snapshot_retention_limit=settings.snapshot_retention_days,
            auto_minor_version_upgrade=True,
        )
        if not settings.multi_az:
            Validations.of(self.replication_group).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-AEC4",
                    reason="One node without a replica by design in this non-production environment "
                    "(settings.cache.multi_az); prod runs Multi-AZ with automatic failover.",
                )
            )

    @property
    def host(self) -> str:
        return self.replication_group.attr_primary_end_point_address

    def node_ids(self) -> list[str]:
        """The member clusters' ids, which ElastiCache metrics use as CacheClusterId."""
        return [f"{self.replication_group.ref}-{i:03d}" for i in range(1, self.node_count + 1)]
