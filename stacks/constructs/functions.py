"""The pipeline's Lambda functions, packaged from `lambdas/` without Docker, and the deploy-time
migration trigger."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Validations,
    aws_ec2 as ec2,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_logs as logs,
    triggers,
)
from constructs import Construct

from stacks.settings import FunctionSettings

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
MIGRATIONS_DIR = ROOT / "migrations"

# The newest runtime all pinned dependencies ship wheels for (psycopg-binary 3.3.9 has cp314
# manylinux_2_28 aarch64 wheels; the rest are pure Python).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = RUNTIME.name.removeprefix("python")
# psycopg-binary 3.3 publishes aarch64 wheels for glibc 2.28 only; the Python 3.12+ runtimes run
# on Amazon Linux 2023 (glibc 2.34), so both tags install.
PIP_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")

ENRICHMENT_SERVICE = "enrich-dial-task"
DIALER_SERVICE = "dialer-worker"
MIGRATION_SERVICE = "db-migrate"


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Builds a function package on this machine: the function's package, `lambdas/shared`, any
    extra directories, and its pinned requirements installed for the Lambda platform by pip."""

    def __init__(self, *, function: str, extra_dirs: Sequence[Path] = ()) -> None:
        self.function = function
        self.extra_dirs = tuple(extra_dirs)

    @property
    def sources(self) -> list[Path]:
        return [LAMBDAS_DIR / self.function, LAMBDAS_DIR / "shared", *self.extra_dirs]

    @property
    def requirements(self) -> Path:
        return LAMBDAS_DIR / self.function / "requirements.txt"

    def pip_command(self, output_dir: str) -> list[str]:
        platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
        return [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *platforms, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", PYTHON_VERSION, "--no-compile",
            # Each requirements.txt pins its whole closure; --no-deps keeps out what the Lambda
            # runtime already provides (botocore, via aws-xray-sdk).
            "--no-deps",
            "--target", output_dir, "-r", str(self.requirements),
        ]  # fmt: skip

    def asset_hash(self) -> str:
        """Changes exactly when what goes into the package changes (sources, pins, target)."""
        digest = hashlib.sha256(f"{PYTHON_VERSION}|{PIP_PLATFORMS}|{self.function}".encode())
        for source in self.sources:
            files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            for path in files:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        # Every function pins its dependencies (lambdas/<function>/requirements.txt); a package
        # without them would deploy and then fail on its first import.
        for needed in [*self.sources, self.requirements]:
            if not needed.exists():
                raise FileNotFoundError(f"cannot bundle {self.function}: {needed} is missing")
        for source in self.sources:
            shutil.copytree(source, Path(output_dir) / source.name, ignore=_IGNORE, dirs_exist_ok=True)
        subprocess.run(self.pip_command(output_dir), check=True)
        return True


def function_code(function: str, *, extra_dirs: Sequence[Path] = ()) -> lambda_.Code:
    bundling = PipLocalBundling(function=function, extra_dirs=extra_dirs)
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundling.asset_hash(),
        exclude=["**/__pycache__", "**/*.pyc"],
        # The image is never pulled: local bundling always succeeds or raises.
        bundling=BundlingOptions(image=DockerImage.from_registry("unused"), local=bundling),
    )


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
    trigger runs once the database exists so a fresh environment is usable after `cdk deploy`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        enrichment: FunctionSettings,
        dialer: FunctionSettings,
        migration: FunctionSettings,
        common_environment: Mapping[str, str],
        enrichment_environment: Mapping[str, str],
        dialer_environment: Mapping[str, str],
        migration_environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        shared = dict(vpc=vpc, subnets=subnets, log_retention=log_retention)

        self.enrichment = PipelineFunction(
            self,
            "Enrichment",
            function="enrich_dial_task",
            description="Adds campaign config to dial tasks; drops invalid, unknown and inactive ones",
            settings=enrichment,
            environment={
                **common_environment,
                "POWERTOOLS_SERVICE_NAME": ENRICHMENT_SERVICE,
                **enrichment_environment,
            },
            **shared,
        )
        self.dialer = PipelineFunction(
            self,
            "Dialer",
            function="dialer_worker",
            description="Paces dial tasks under the global MAX_CPS and sends them to the Node.js worker",
            settings=dialer,
            environment={
                **common_environment,
                "POWERTOOLS_SERVICE_NAME": DIALER_SERVICE,
                "DIALER_RESERVED_CONCURRENCY": str(dialer.reserved_concurrency),
                **dialer_environment,
            },
            **shared,
        )
        self.migration = PipelineFunction(
            self,
            "Migration",
            function="db_migrate",
            description="Applies migrations/ to the campaigns database at deploy time",
            settings=migration,
            environment={
                **common_environment,
                "POWERTOOLS_SERVICE_NAME": MIGRATION_SERVICE,
                # The bundling copies migrations/ to the package root.
                "MIGRATIONS_DIR": "/var/task/migrations",
                **migration_environment,
            },
            extra_dirs=[MIGRATIONS_DIR],
            **shared,
        )
        self.migration_timeout = Duration.seconds(migration.timeout_seconds)
        self.migration_trigger: Optional[triggers.Trigger] = None

    def run_migrations_after(self, *dependencies: Construct) -> triggers.Trigger:
        """Invoke the migration function on every deploy that changes it, after `dependencies`."""
        self.migration_trigger = triggers.Trigger(
            self,
            "RunMigrations",
            handler=self.migration.function,
            execute_after=list(dependencies),
            execute_on_handler_change=True,
            timeout=self.migration_timeout,
        )
        return self.migration_trigger
