"""Template assertions for every environment's DialPipeline stack (given settings, when synthesized,
then the template holds what issue 2 asks for)."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match

from stacks.settings import ENVIRONMENTS


def resources(env, type_: str, props=None) -> dict:
    return env.template.find_resources(type_, {"Properties": props} if props else None)


def only(env, type_: str) -> tuple[str, dict]:
    found = resources(env, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id(env, prefix: str, type_: str) -> str:
    matches = [k for k in resources(env, type_) if k.startswith(prefix)]
    assert len(matches) == 1, f"{prefix} {type_}: {matches}"
    return matches[0]


def function(env, name: str) -> tuple[str, dict]:
    lid = logical_id(env, f"Functions{name}Function", "AWS::Lambda::Function")
    return lid, env.template_json["Resources"][lid]["Properties"]


def policy_statements(env, role_prefix: str) -> list[dict]:
    statements = []
    for lid, policy in resources(env, "AWS::IAM::Policy").items():
        if lid.startswith(role_prefix):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def as_list(value):
    return value if isinstance(value, list) else [value]


# -- stack --------------------------------------------------------------------------------------


def test_stack_name_and_max_cps_parameter(env):
    assert env.stack.stack_name == f"DialPipeline-{env.settings.name}"
    env.template.has_parameter("MaxCps", {"Type": "Number", "Default": env.settings.max_cps, "MinValue": 1})


def test_worker_url_is_a_required_parameter_that_feeds_the_dialer(env):
    """No placeholder worker URL: every deploy names its worker, checked by CloudFormation."""
    parameter = env.template_json["Parameters"]["WorkerUrl"]
    assert parameter["Type"] == "String"
    assert "Default" not in parameter
    _, dialer = function(env, "Dialer")
    assert dialer["Environment"]["Variables"]["NODE_WORKER_URL"] == {"Ref": "WorkerUrl"}
    accepts = lambda value: re.fullmatch(parameter["AllowedPattern"], value) is not None  # noqa: E731
    assert accepts("https://dial-worker.example.com")
    assert accepts("https://dial-worker.example.com:443/v1")
    for wrong in (
        "",
        "dial-worker.example.com",
        "ftp://dial-worker.example.com",
        "https://dial-worker.example.com:8080",
        "http://dial-worker.example.com",
        "https://dial worker.example.com",
        "https://host/dial?x=1",
    ):
        assert not accepts(wrong), wrong


def test_stack_is_environment_agnostic(env):
    # Synthesizes without an account or credentials.
    assert env.stack.resolve(env.stack.account) == {"Ref": "AWS::AccountId"}


# -- network ------------------------------------------------------------------------------------


def test_vpc_with_public_egress_and_isolated_subnets_in_every_az(env):
    env.template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": env.settings.vpc_cidr})
    subnets = resources(env, "AWS::EC2::Subnet")
    assert len(subnets) == 3 * env.settings.max_azs
    for tier in ("public", "functions", "data"):
        assert sum(tier in lid for lid in subnets) == env.settings.max_azs
    assert len(resources(env, "AWS::EC2::NatGateway")) == env.settings.nat_gateways


def test_flow_logs_to_cloudwatch_with_retention(env):
    env.template.has_resource_properties(
        "AWS::EC2::FlowLog", {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    flow_log_group = logical_id(env, "NetworkFlowLogGroup", "AWS::Logs::LogGroup")
    assert (
        env.template_json["Resources"][flow_log_group]["Properties"]["RetentionInDays"]
        >= env.settings.log_retention_days
    )


def test_only_the_endpoints_the_functions_need(env):
    endpoints = resources(env, "AWS::EC2::VPCEndpoint")
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints.values())
    assert len(endpoints) == 3
    # Secrets (both functions), SQS (deferral) and SSM (the dialer's live MAX_CPS).
    assert "secretsmanager" in services[0] and "sqs" in services[1] and ".ssm" in services[2]
    for endpoint in endpoints.values():
        assert endpoint["Properties"]["VpcEndpointType"] == "Interface"
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_security_groups_open_to_each_other_by_group_never_by_cidr(env):
    for lid, group in resources(env, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            pytest.fail(f"{lid} has an inline ingress rule {rule}")
    ingress = resources(env, "AWS::EC2::SecurityGroupIngress")
    assert ingress
    for lid, rule in ingress.items():
        assert "SourceSecurityGroupId" in rule["Properties"], lid
        assert not {"CidrIp", "CidrIpv6"} & set(rule["Properties"]), lid


NO_TRAFFIC = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}


def egress_destinations(env, group_prefix: str) -> set[tuple[str, int | str]]:
    """(destination group's prefix, port) of every separate egress rule of the group `group_prefix`."""
    found = set()
    for lid, rule in resources(env, "AWS::EC2::SecurityGroupEgress").items():
        props = rule["Properties"]
        if not props["GroupId"]["Fn::GetAtt"][0].startswith(group_prefix):
            continue
        assert "DestinationSecurityGroupId" in props and not {"CidrIp", "CidrIpv6"} & set(props), lid
        destination = props["DestinationSecurityGroupId"]["Fn::GetAtt"][0].split("SecurityGroup")[0]
        port = props["FromPort"] if isinstance(props["FromPort"], int) else "db"  # rotation: the instance's port
        found.add((destination, port))
    return found


def test_functions_egress_only_to_what_each_needs(env):
    """Function security groups have no allow-all egress: each rule names a peer group, except the
    dialer's one rule to the worker outside the VPC."""
    database = "DatabaseProxy" if env.settings.database.use_proxy else "Database"
    secrets = ("NetworkVpcSecretsManagerEndpoint", 443)
    expected = {
        # Its records go to the ledger's queue through the SQS endpoint.
        "FunctionsEnrichment": {(database, 5432), secrets, ("NetworkVpcSqsEndpoint", 443)},
        "FunctionsDialer": {
            ("Cache", env.settings.cache.port),
            secrets,
            ("NetworkVpcSqsEndpoint", 443),
            ("NetworkVpcSsmEndpoint", 443),  # the live MAX_CPS
        },
        "FunctionsMigration": {("Database", 5432), secrets},
        # Redis and its AUTH token only: Lambda polls the call-events queue itself.
        "FunctionsCallEvents": {("Cache", env.settings.cache.port), secrets, ("NetworkVpcSqsEndpoint", 443)},
        # The instance itself (retention's DDL), Redis (a restore), its secrets, SQS (retries).
        "LedgerWriter": {
            ("Database", 5432),
            ("Cache", env.settings.cache.port),
            secrets,
            ("NetworkVpcSqsEndpoint", 443),
        },
        "DatabaseRotation": {("Database", "db"), secrets},
    }
    worker = {
        "CidrIp": "0.0.0.0/0",
        "Description": "Node.js dial worker (WorkerUrl), outside the VPC",
        "IpProtocol": "tcp",
        "FromPort": env.settings.node_worker_port,
        "ToPort": env.settings.node_worker_port,
    }
    for prefix, destinations in expected.items():
        group = logical_id(env, f"{prefix}SecurityGroup", "AWS::EC2::SecurityGroup")
        inline = env.template_json["Resources"][group]["Properties"].get("SecurityGroupEgress")
        # Never empty: EC2 gives a group created without egress rules an allow-all rule.
        assert inline == ([worker] if prefix == "FunctionsDialer" else [NO_TRAFFIC]), prefix
        assert egress_destinations(env, f"{prefix}SecurityGroup") == destinations, prefix


def ingress_between(env, source_prefix: str, target_prefix: str) -> list[dict]:
    rules = []
    for rule in resources(env, "AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        source = props["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        target = props["GroupId"]["Fn::GetAtt"][0]
        if source.startswith(source_prefix) and target.startswith(target_prefix):
            rules.append(props)
    return rules


def test_enrichment_reaches_the_database_through_the_proxy_when_there_is_one(env):
    if env.settings.database.use_proxy:
        assert ingress_between(env, "FunctionsEnrichmentSecurityGroup", "DatabaseProxySecurityGroup")
        assert ingress_between(env, "DatabaseProxySecurityGroup", "DatabaseSecurityGroup")
        assert not ingress_between(env, "FunctionsEnrichmentSecurityGroup", "DatabaseSecurityGroup")
    else:
        [rule] = ingress_between(env, "FunctionsEnrichmentSecurityGroup", "DatabaseSecurityGroup")
        assert rule["FromPort"] == rule["ToPort"] == 5432
    assert ingress_between(env, "FunctionsMigrationSecurityGroup", "DatabaseSecurityGroup")
    assert ingress_between(env, "DatabaseRotationSecurityGroup", "DatabaseSecurityGroup")


def test_only_the_dialer_call_events_and_the_ledger_reach_the_cache(env):
    rules = ingress_between(env, "", "CacheSecurityGroup")
    sources = sorted(r["SourceSecurityGroupId"]["Fn::GetAtt"][0].split("SecurityGroup")[0] for r in rules)
    assert sources == ["FunctionsCallEvents", "FunctionsDialer", "LedgerWriter"]
    assert all(r["FromPort"] == r["ToPort"] == env.settings.cache.port for r in rules)


def test_endpoints_admit_exactly_their_callers(env):
    secrets = {
        r["SourceSecurityGroupId"]["Fn::GetAtt"][0].split("SecurityGroup")[0]
        for r in ingress_between(env, "", "NetworkVpcSecretsManagerEndpointSecurityGroup")
    }
    assert secrets == {
        "FunctionsEnrichment",
        "FunctionsDialer",
        "FunctionsMigration",
        "FunctionsCallEvents",
        "DatabaseRotation",
        "LedgerWriter",
    }
    sqs = ingress_between(env, "", "NetworkVpcSqsEndpointSecurityGroup")
    assert sorted(r["SourceSecurityGroupId"]["Fn::GetAtt"][0].split("SecurityGroup")[0] for r in sqs) == [
        "FunctionsCallEvents",
        "FunctionsDialer",
        "FunctionsEnrichment",
        "LedgerWriter",
    ]


# -- database -----------------------------------------------------------------------------------


def test_database_encrypted_private_backed_up_and_sized_per_environment(env):
    db = env.settings.database
    size = {"burstable4_graviton": "t4g", "memory6_graviton": "r6g"}[db.instance_class]
    env.template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "StorageEncrypted": True,
            "PubliclyAccessible": False,
            "DBInstanceClass": f"db.{size}.{db.instance_size}",
            "AllocatedStorage": str(db.allocated_storage_gb),
            "MaxAllocatedStorage": db.max_allocated_storage_gb,
            "MultiAZ": db.multi_az,
            "DeletionProtection": db.deletion_protection,
            "BackupRetentionPeriod": db.backup_retention_days,
            "Port": "5432",
        },
    )


def test_enhanced_monitoring_in_prod(env):
    _, instance = only(env, "AWS::RDS::DBInstance")
    seconds = env.settings.database.enhanced_monitoring_seconds
    assert instance["Properties"].get("MonitoringInterval", 0) == seconds
    assert (seconds > 0) == (env.settings.name == "prod")
    if seconds:
        role = instance["Properties"]["MonitoringRoleArn"]["Fn::GetAtt"][0]
        trust = env.template_json["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "monitoring.rds.amazonaws.com"}]


def test_database_enforces_ssl(env):
    env.template.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Family": "postgres17", "Parameters": {"rds.force_ssl": "1"}}
    )
    _, instance = only(env, "AWS::RDS::DBInstance")
    assert instance["Properties"]["DBParameterGroupName"]["Ref"].startswith("DatabaseParameters")


def test_database_secret_is_generated_and_rotated(env):
    env.template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": Match.object_like({"SecretStringTemplate": Match.string_like_regexp("username")})},
    )
    env.template.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": f"rate({env.settings.database.credentials_rotation_days} days)"}},
    )
    # The admin's single-user rotation, and a multi-user one for the reader and the ledger writer each.
    env.template.resource_count_is("AWS::Serverless::Application", 3)


def test_rotation_does_not_start_while_the_migration_logs_in(env):
    """An immediate rotation on creation races the migration trigger, which reads the secrets then."""
    schedules = resources(env, "AWS::SecretsManager::RotationSchedule").values()
    assert len(schedules) == 3
    for schedule in schedules:
        assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False


def rotation_application(env, schedule: dict) -> tuple[str, dict]:
    """(the hosted application's id, its parameters) behind a rotation schedule."""
    app = schedule["Properties"]["RotationLambdaARN"]["Fn::GetAtt"][0]
    props = env.template_json["Resources"][app]["Properties"]
    mapping = props["Location"]["ApplicationId"]["Fn::FindInMap"][0]
    return env.template_json["Mappings"][mapping]["aws"]["applicationId"], props["Parameters"]


# The roles the migrations create NOLOGIN (0002, 0005), each with its own secret.
ROLE_SECRETS = pytest.mark.parametrize(
    "attachment_prefix, username",
    [
        ("DatabaseReaderSecretAttachment", "campaigns_reader"),
        ("DatabaseLedgerWriterSecretAttachment", "call_ledger_writer"),
    ],
)


@ROLE_SECRETS
def test_each_role_secret_names_its_role_attached_to_the_instance(env, attachment_prefix, username):
    """The enrichment's read-only user and the ledger writer, with host and port from the attachment."""
    attachment = logical_id(env, attachment_prefix, "AWS::SecretsManager::SecretTargetAttachment")
    props = env.template_json["Resources"][attachment]["Properties"]
    instance, _ = only(env, "AWS::RDS::DBInstance")
    assert props["TargetId"] == {"Ref": instance}
    secret = props["SecretId"]["Ref"]
    template = env.template_json["Resources"][secret]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
    parts = template["Fn::Join"][1]
    admin = env.template_json["Resources"][
        logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    ]["Properties"]["SecretId"]
    # masterarn: the admin secret, with which the multi-user rotation changes the role's password.
    assert parts == [f'{{"username":"{username}","dbname":"campaigns","masterarn":"', admin, '"}']


@ROLE_SECRETS
def test_each_role_secret_is_rotated_by_the_admin_like_the_admin_secret(env, attachment_prefix, username):
    reader = {"Ref": logical_id(env, attachment_prefix, "AWS::SecretsManager::SecretTargetAttachment")}
    admin = {"Ref": logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")}
    schedules = {
        json.dumps(schedule["Properties"]["SecretId"]): schedule
        for schedule in resources(env, "AWS::SecretsManager::RotationSchedule").values()
    }
    reader_app, reader_params = rotation_application(env, schedules[json.dumps(reader)])
    admin_app, admin_params = rotation_application(env, schedules[json.dumps(admin)])
    assert reader_app.endswith("/SecretsManagerRDSPostgreSQLRotationMultiUser")
    assert admin_app.endswith("/SecretsManagerRDSPostgreSQLRotationSingleUser")
    assert reader_params["masterSecretArn"] == admin
    assert (
        schedules[json.dumps(reader)]["Properties"]["RotationRules"]
        == (schedules[json.dumps(admin)]["Properties"]["RotationRules"])
    )
    for key in ("vpcSubnetIds", "vpcSecurityGroupIds", "endpoint", "excludeCharacters"):
        assert reader_params[key] == admin_params[key], key


def test_database_secret_names_the_campaigns_database(env):
    """Without `dbname` in the secret, the functions and the migration fall back to `postgres`."""
    attachment = logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    secret = env.template_json["Resources"][attachment]["Properties"]["SecretId"]["Ref"]
    generate = env.template_json["Resources"][secret]["Properties"]["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {"username": "campaigns_admin", "dbname": "campaigns"}
    _, instance = only(env, "AWS::RDS::DBInstance")
    assert instance["Properties"]["DBName"] == "campaigns"
    # The instance's master password is the generated secret's, which every client reads.
    assert secret in json.dumps(instance["Properties"]["MasterUserPassword"])


def test_rds_proxy_per_settings(env):
    proxies = resources(env, "AWS::RDS::DBProxy")
    _, enrichment = function(env, "Enrichment")
    if env.settings.database.use_proxy:
        [proxy] = proxies.values()
        assert proxy["Properties"]["RequireTLS"] is True
        # The proxy lets in only the users whose secrets it holds: the admin and the reader.
        assert [auth["SecretArn"] for auth in proxy["Properties"]["Auth"]] == [
            {"Ref": logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")},
            {"Ref": logical_id(env, "DatabaseReaderSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")},
        ]
        assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
        assert enrichment["Environment"]["Variables"]["DB_HOST"] == {"Fn::GetAtt": [next(iter(proxies)), "Endpoint"]}
    else:
        assert proxies == {}
        assert "DB_HOST" not in enrichment["Environment"]["Variables"]


def test_dev_is_small_and_prod_is_highly_available(dev, prod):
    _, dev_db = only(dev, "AWS::RDS::DBInstance")
    _, prod_db = only(prod, "AWS::RDS::DBInstance")
    assert dev_db["Properties"]["DBInstanceClass"] == "db.t4g.micro"
    assert (dev_db["Properties"]["MultiAZ"], dev_db["Properties"]["DeletionProtection"]) == (False, False)
    assert (prod_db["Properties"]["MultiAZ"], prod_db["Properties"]["DeletionProtection"]) == (True, True)
    assert len(resources(dev, "AWS::RDS::DBProxy")) == 0 and len(resources(prod, "AWS::RDS::DBProxy")) == 1
    _, dev_cache = only(dev, "AWS::ElastiCache::ReplicationGroup")
    _, prod_cache = only(prod, "AWS::ElastiCache::ReplicationGroup")
    assert dev_cache["Properties"]["NumCacheClusters"] == 1
    assert dev_cache["Properties"]["AutomaticFailoverEnabled"] is False
    assert prod_cache["Properties"]["MultiAZEnabled"] is True
    assert prod_cache["Properties"]["AutomaticFailoverEnabled"] is True
    assert prod_cache["Properties"]["NumCacheClusters"] >= 2
    assert len(resources(prod, "AWS::EC2::NatGateway")) > len(resources(dev, "AWS::EC2::NatGateway"))


# -- cache --------------------------------------------------------------------------------------


def test_cache_encrypted_with_auth_token_from_secrets_manager(env):
    cache = env.settings.cache
    token_secret = logical_id(env, "CacheAuthToken", "AWS::SecretsManager::Secret")
    env.template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "Engine": "valkey",
            "TransitEncryptionEnabled": True,
            "AtRestEncryptionEnabled": True,
            "CacheNodeType": cache.node_type,
            "NumCacheClusters": 1 + cache.replicas,
            "MultiAZEnabled": cache.multi_az,
            "AutomaticFailoverEnabled": cache.replicas > 0,
            "Port": cache.port,
            "AuthToken": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": token_secret}, ":SecretString:::}}"]]},
            "CacheSubnetGroupName": {"Ref": Match.string_like_regexp("CacheSubnets")},
        },
    )


def test_cache_auth_token_secret_is_a_raw_string(env):
    token_secret = logical_id(env, "CacheAuthToken", "AWS::SecretsManager::Secret")
    generate = env.template_json["Resources"][token_secret]["Properties"]["GenerateSecretString"]
    assert generate["ExcludePunctuation"] is True
    # No SecretStringTemplate/GenerateStringKey: the SecretString is the token itself, not JSON.
    assert "SecretStringTemplate" not in generate and "GenerateStringKey" not in generate


def test_cache_subnets_are_isolated(env):
    _, group = only(env, "AWS::ElastiCache::SubnetGroup")
    assert all("dataSubnet" in s["Ref"] for s in group["Properties"]["SubnetIds"])


# -- queues -------------------------------------------------------------------------------------


def test_queue_sse_redrive_and_visibility_timeout_from_settings(env):
    dlq = logical_id(env, "QueuesDeadLetterQueue", "AWS::SQS::Queue")
    env.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": env.settings.visibility_timeout_seconds,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                "maxReceiveCount": env.settings.queue.max_receive_count,
            },
        },
    )
    assert env.settings.visibility_timeout_seconds >= 6 * (
        env.settings.enrichment.timeout_seconds + env.settings.dialer.timeout_seconds
    )


def test_dlq_keeps_messages_fourteen_days(env):
    dlq = logical_id(env, "QueuesDeadLetterQueue", "AWS::SQS::Queue")
    props = env.template_json["Resources"][dlq]["Properties"]
    assert props["MessageRetentionPeriod"] == 14 * 86_400
    assert props["SqsManagedSseEnabled"] is True


def test_prod_keeps_queues_secrets_and_database_logs_when_the_stack_is_deleted(env):
    """Deleting the prod stack must not delete undelivered dial tasks, the DLQ or the credentials."""
    kept = "Retain" if env.settings.retain_on_delete else "Delete"
    data = {**resources(env, "AWS::SQS::Queue"), **resources(env, "AWS::SecretsManager::Secret")}
    # Six queues (dial tasks, call events, call records, a DLQ each); the admin, reader, ledger
    # writer, AUTH token and recipient hash key secrets.
    assert len(data) == 11
    for lid in data:
        resource = env.template_json["Resources"][lid]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (kept, kept), lid
    [retention] = resources(env, "Custom::LogRetention").values()
    assert retention["Properties"]["RemovalPolicy"] == kept.lower().replace("delete", "destroy")
    _, instance = only(env, "AWS::RDS::DBInstance")
    assert instance["DeletionPolicy"] == "Snapshot"


def test_only_prod_retains():
    assert {name: s.retain_on_delete for name, s in ENVIRONMENTS.items()} == {
        "dev": False,
        "staging": False,
        "prod": True,
    }


def test_every_queue_refuses_requests_without_tls(env):
    policies = resources(env, "AWS::SQS::QueuePolicy")
    assert len(policies) == 6
    for policy in policies.values():
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- pipe ---------------------------------------------------------------------------------------


def test_pipe_source_filter_batching_enrichment_and_target(env):
    pipe = env.settings.pipe
    queue = logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue")
    enrichment, _ = function(env, "Enrichment")
    dialer, _ = function(env, "Dialer")
    env.template.has_resource_properties(
        "AWS::Pipes::Pipe",
        {
            "Source": {"Fn::GetAtt": [queue, "Arn"]},
            "SourceParameters": {
                "SqsQueueParameters": {
                    "BatchSize": pipe.batch_size,
                    "MaximumBatchingWindowInSeconds": pipe.batching_window_seconds,
                },
                "FilterCriteria": {"Filters": [{"Pattern": pipe.filter_pattern_json}]},
            },
            "Enrichment": {"Fn::GetAtt": [enrichment, "Arn"]},
            "Target": {"Fn::GetAtt": [dialer, "Arn"]},
            "TargetParameters": {"LambdaFunctionParameters": {"InvocationType": "REQUEST_RESPONSE"}},
        },
    )
    assert json.loads(pipe.filter_pattern_json) == {"body": {"phoneNumber": [{"exists": True}]}}


def test_pipe_logs_errors_to_a_log_group_with_retention_without_payloads(env):
    log_group = logical_id(env, "PipeLogGroup", "AWS::Logs::LogGroup")
    _, pipe = only(env, "AWS::Pipes::Pipe")
    config = pipe["Properties"]["LogConfiguration"]
    assert config["CloudwatchLogsLogDestination"] == {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}
    assert config["Level"] == "ERROR"
    assert "IncludeExecutionData" not in config  # payloads carry phone numbers
    assert env.template_json["Resources"][log_group]["Properties"]["RetentionInDays"] >= env.settings.log_retention_days


def test_pipe_role_is_least_privilege_and_trusted_by_pipes(env):
    role = logical_id(env, "PipeRole", "AWS::IAM::Role")
    role_props = env.template_json["Resources"][role]["Properties"]
    assert role_props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "pipes.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    assert "ManagedPolicyArns" not in role_props
    queue = logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue")
    enrichment, _ = function(env, "Enrichment")
    dialer, _ = function(env, "Dialer")
    log_group = logical_id(env, "PipeLogGroup", "AWS::Logs::LogGroup")
    statements = {s["Sid"]: s for s in policy_statements(env, "PipeRole")}
    assert set(statements) == {"ReadSourceQueue", "InvokeEnrichmentAndTarget", "WritePipeLogs"}
    assert sorted(statements["ReadSourceQueue"]["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert statements["ReadSourceQueue"]["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert statements["InvokeEnrichmentAndTarget"]["Action"] == "lambda:InvokeFunction"
    invoked = sorted(r["Fn::GetAtt"][0] for r in statements["InvokeEnrichmentAndTarget"]["Resource"])
    assert invoked == sorted([enrichment, dialer])
    assert sorted(statements["WritePipeLogs"]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["WritePipeLogs"]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}


# -- functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,handler",
    [
        ("Enrichment", "enrich_dial_task.handler.handler"),
        ("Dialer", "dialer_worker.handler.handler"),
        ("Migration", "db_migrate.handler.handler"),
    ],
)
def test_functions_runtime_arch_vpc_tracing_and_logs(env, name, handler):
    sizes = {"Enrichment": env.settings.enrichment, "Dialer": env.settings.dialer, "Migration": env.settings.migration}[
        name
    ]
    _, props = function(env, name)
    assert props["Runtime"] == "python3.13"  # the version the bundler can compile bytecode for
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == handler
    assert props["MemorySize"] == sizes.memory_mb
    assert props["Timeout"] == sizes.timeout_seconds
    assert props["ReservedConcurrentExecutions"] == sizes.reserved_concurrency
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert all("functionsSubnet" in s["Ref"] for s in props["VpcConfig"]["SubnetIds"])
    assert len(props["VpcConfig"]["SubnetIds"]) == env.settings.max_azs
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert env.template_json["Resources"][log_group]["Properties"]["RetentionInDays"] >= env.settings.log_retention_days
    assert props["Code"]["S3Key"].endswith(".zip")


def test_enrichment_environment(env):
    _, props = function(env, "Enrichment")
    variables = props["Environment"]["Variables"]
    # The read-only campaigns_reader, never the admin.
    reader = logical_id(env, "DatabaseReaderSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    assert variables["DB_SECRET_ARN"] == {"Ref": reader}
    assert variables["CAMPAIGN_CACHE_TTL_SECONDS"] == str(env.settings.campaign_cache_ttl_seconds)
    assert variables["POWERTOOLS_SERVICE_NAME"] == "enrich-dial-task"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == env.settings.metrics_namespace
    assert variables["LOG_LEVEL"] == env.settings.log_level


def test_dialer_environment(env):
    _, props = function(env, "Dialer")
    variables = props["Environment"]["Variables"]
    cache = logical_id(env, "CacheReplicationGroup", "AWS::ElastiCache::ReplicationGroup")
    queue = logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue")
    assert variables == {
        "POWERTOOLS_SERVICE_NAME": "dialer-worker",
        "POWERTOOLS_METRICS_NAMESPACE": env.settings.metrics_namespace,
        "LOG_LEVEL": env.settings.log_level,
        "REDIS_HOST": {"Fn::GetAtt": [cache, "PrimaryEndPoint.Address"]},
        "REDIS_PORT": str(env.settings.cache.port),
        "REDIS_TLS": "true",
        "REDIS_AUTH_SECRET_ARN": {"Ref": logical_id(env, "CacheAuthToken", "AWS::SecretsManager::Secret")},
        "NODE_WORKER_URL": {"Ref": "WorkerUrl"},
        "MAX_CPS": {"Ref": "MaxCps"},
        # Runtime control: the live value under the MaxCps ceiling (test_runtime_control.py).
        "MAX_CPS_PARAMETER_NAME": {"Ref": logical_id(env, "LiveMaxCps", "AWS::SSM::Parameter")},
        "DEFER_QUEUE_URL": {"Ref": queue},
        "CALL_RECORDS_QUEUE_URL": {"Ref": logical_id(env, "LedgerQueue", "AWS::SQS::Queue")},
        "DIALER_RESERVED_CONCURRENCY": str(env.settings.dialer.reserved_concurrency),
        "CLAIM_TTL_SECONDS": str(env.settings.claim_ttl_seconds),
        "RESTORE_HOLD_SECONDS": str(env.settings.restore_hold_seconds),
        # Slots reserved in Redis before an outage may still be dialed for one dialer timeout.
        "REDIS_QUARANTINE_SECONDS": str(env.settings.dialer.timeout_seconds),
        # Dial-time compliance: the safe defaults are the deployed ones.
        "CALLING_HOURS": "08:00-21:00",
        "DEFAULT_TIME_ZONE": env.settings.default_time_zone,
        "TASK_MAX_AGE_HOURS": str(env.settings.task_max_age_hours),
        "RECIPIENT_DAILY_LIMIT": str(env.settings.recipient_daily_limit),
        "RECIPIENT_HASH_KEY_SECRET_ARN": {
            "Ref": logical_id(env, "CacheRecipientHashKey", "AWS::SecretsManager::Secret")
        },
        # Live calls: the fleet cap is the MaxConcurrentCalls parameter, the lease from settings.
        "MAX_CONCURRENT_CALLS": {"Ref": "MaxConcurrentCalls"},
        "MAX_CALL_SECONDS": str(env.settings.max_call_seconds),
    }


def test_migration_environment(env):
    _, props = function(env, "Migration")
    variables = props["Environment"]["Variables"]
    admin = logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    reader = logical_id(env, "DatabaseReaderSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    writer = logical_id(env, "DatabaseLedgerWriterSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    # Logs in as the admin (DDL, directly to the instance) and gives each role its password.
    assert variables["DB_SECRET_ARN"] == {"Ref": admin}
    assert variables["READER_SECRET_ARN"] == {"Ref": reader}
    assert variables["LEDGER_WRITER_SECRET_ARN"] == {"Ref": writer}
    assert variables["DB_NAME"] == "campaigns"
    assert variables["MIGRATIONS_DIR"] == "/var/task/migrations"
    assert "DB_HOST" not in variables


def test_no_secret_value_reaches_an_environment_variable(env):
    for lid, fn in resources(env, "AWS::Lambda::Function").items():
        text = json.dumps(fn["Properties"].get("Environment", {}))
        assert "resolve:secretsmanager" not in text, lid
        assert "PASSWORD" not in text.upper(), lid


def test_secret_read_grants_by_arn(env):
    admin = logical_id(env, "DatabaseSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    reader = logical_id(env, "DatabaseReaderSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    writer = logical_id(env, "DatabaseLedgerWriterSecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
    token = logical_id(env, "CacheAuthToken", "AWS::SecretsManager::Secret")
    hash_key = logical_id(env, "CacheRecipientHashKey", "AWS::SecretsManager::Secret")

    def read_secrets(role_prefix) -> list[str]:
        return sorted(
            resource["Ref"]
            for s in policy_statements(env, role_prefix)
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
            for resource in as_list(s["Resource"])
        )

    # The enrichment only its read-only user; the migration the admin (to log in) and each role's.
    assert read_secrets("FunctionsEnrichmentRole") == [reader]
    assert read_secrets("FunctionsMigrationRole") == sorted([admin, reader, writer])
    assert read_secrets("FunctionsDialerRole") == sorted([token, hash_key])


def test_dialer_may_send_deferred_tasks_to_the_queue_and_nothing_else_may(env):
    """The dial-tasks queue: the dialer (deferrals) and the ledger (retries); the records queue:
    the three producers."""
    queue = {"Fn::GetAtt": [logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue"), "Arn"]}
    records = {"Fn::GetAtt": [logical_id(env, "LedgerQueue", "AWS::SQS::Queue"), "Arn"]}
    senders = {
        prefix: [s["Resource"] for s in policy_statements(env, prefix) if "sqs:SendMessage" in as_list(s["Action"])]
        for prefix in (
            "FunctionsEnrichmentRole",
            "FunctionsDialerRole",
            "FunctionsMigrationRole",
            "FunctionsCallEventsRole",
            "LedgerWriterRole",
            "PipeRole",
        )
    }
    assert senders == {
        "FunctionsEnrichmentRole": [records],
        "FunctionsDialerRole": [queue, records],
        "FunctionsMigrationRole": [],
        "FunctionsCallEventsRole": [records],
        "LedgerWriterRole": [queue],
        "PipeRole": [],
    }


def test_function_roles_write_only_their_own_logs(env):
    for name in ("Enrichment", "Dialer", "Migration"):
        role = logical_id(env, f"Functions{name}Role", "AWS::IAM::Role")
        assert "ManagedPolicyArns" not in env.template_json["Resources"][role]["Properties"]
        [logs] = [s for s in policy_statements(env, f"Functions{name}Role") if s.get("Sid") == "WriteOwnLogs"]
        assert logs["Resource"] == {
            "Fn::GetAtt": [logical_id(env, f"Functions{name}LogGroup", "AWS::Logs::LogGroup"), "Arn"]
        }


def test_migrations_run_as_a_trigger_after_the_database(env):
    lid, trigger = only(env, "Custom::Trigger")
    version = trigger["Properties"]["HandlerArn"]["Ref"]
    assert version.startswith("FunctionsMigrationFunctionCurrentVersion")
    assert trigger["Properties"]["ExecuteOnHandlerChange"] is True
    assert trigger["Properties"]["InvocationType"] == "RequestResponse"
    depends_on = set(trigger["DependsOn"])
    instance, _ = only(env, "AWS::RDS::DBInstance")
    assert instance in depends_on
    assert any(d.startswith("DatabaseSecurityGroupfrom") and "FunctionsMigration" in d for d in depends_on)
    assert any(d.startswith("NetworkVpcSecretsManagerEndpoint") for d in depends_on)
    # The migration's own egress rules exist before it runs, or it cannot reach the database.
    assert any(d.startswith("FunctionsMigrationSecurityGroupto") and "DatabaseSecurityGroup" in d for d in depends_on)
    assert any(d.startswith("FunctionsMigrationSecurityGroupto") and "SecretsManagerEndpoint" in d for d in depends_on)
    # It gives campaigns_reader and call_ledger_writer their passwords: their secrets and
    # attachments exist first.
    for role in ("Reader", "LedgerWriter"):
        attachment = logical_id(env, f"Database{role}SecretAttachment", "AWS::SecretsManager::SecretTargetAttachment")
        assert attachment in depends_on
        assert logical_id(env, f"Database{role}Secret", "AWS::SecretsManager::Secret") in depends_on


def test_enrichment_and_ledger_writer_are_created_and_updated_only_after_the_migration_ran(env):
    """The enrichment logs in as campaigns_reader and the ledger writer as call_ledger_writer,
    which have LOGIN and their passwords only once the migration ran; the pipe and the event source
    mapping, which invoke them, come after their functions."""
    trigger, _ = only(env, "Custom::Trigger")
    for name in ("FunctionsEnrichmentFunction", "LedgerWriterFunction"):
        lid = logical_id(env, name, "AWS::Lambda::Function")
        assert trigger in env.template_json["Resources"][lid]["DependsOn"], name


# -- monitoring ---------------------------------------------------------------------------------


def alarms(env) -> dict:
    return {lid: a["Properties"] for lid, a in resources(env, "AWS::CloudWatch::Alarm").items()}


def alarm(env, name: str) -> dict:
    found = [props for lid, props in alarms(env).items() if lid.startswith(f"Monitoring{name}")]
    assert len(found) == 1, name
    return found[0]


def test_every_alarm_notifies_the_encrypted_topic(env):
    topic, topic_props = only(env, "AWS::SNS::Topic")
    key, key_props = only(env, "AWS::KMS::Key")
    assert topic_props["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert key_props["Properties"]["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in json.dumps(key_props["Properties"]["KeyPolicy"])
    for lid, props in alarms(env).items():
        assert props["AlarmActions"] == [{"Ref": topic}], lid
    nodes = 1 + env.settings.cache.replicas
    # queues 2, functions 4 x 2, pipe 6, database 3, cache 3 per node, dialer 4 (with RestoreTimedOut), call events 2, ledger 3
    assert len(alarms(env)) == 2 + 4 * 2 + 6 + 3 + 3 * nodes + 4 + 2 + 3


def test_alarm_email_is_a_required_parameter_where_settings_say_so(env):
    """Alarms that reach nobody: staging and prod cannot be deployed without an alarm e-mail."""
    parameter = env.template_json["Parameters"]["AlarmEmail"]
    assert parameter["Type"] == "String"
    [subscription] = resources(env, "AWS::SNS::Subscription").values()
    topic, _ = only(env, "AWS::SNS::Topic")
    assert subscription["Properties"] == {
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
        "TopicArn": {"Ref": topic},
    }
    accepts = lambda value: re.fullmatch(parameter["AllowedPattern"], value) is not None  # noqa: E731
    assert accepts("oncall@example.com") and not accepts("oncall") and not accepts("a b@example.com")
    if env.settings.alarm_email_required:
        assert "Default" not in parameter
        assert not accepts("")
        assert "Condition" not in subscription
    else:
        assert parameter["Default"] == ""
        assert accepts("")
        # No subscription while the parameter is empty.
        assert subscription["Condition"] == "HasAlarmEmail"
        assert env.template_json["Conditions"]["HasAlarmEmail"] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
        }


def test_staging_and_prod_require_an_alarm_email():
    assert {name: s.alarm_email_required for name, s in ENVIRONMENTS.items()} == {
        "dev": False,
        "staging": True,
        "prod": True,
    }


def _from_own_alarms(statement) -> bool:
    conditions = statement.get("Condition", {})
    return conditions.get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"} and (
        ":cloudwatch:" in json.dumps(conditions.get("ArnLike", {}).get("aws:SourceArn"))
    )


def test_topic_policy_allows_cloudwatch_to_publish_for_this_account_only(env):
    topic, _ = only(env, "AWS::SNS::Topic")
    _, policy = only(env, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic}
    assert _from_own_alarms(allow)
    # The enforce-SSL Deny stays.
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_key_lets_cloudwatch_use_it_for_this_account_only(env):
    _, key = only(env, "AWS::KMS::Key")
    [statement] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert _from_own_alarms(statement)


def test_queue_alarms(env):
    dlq = alarm(env, "DlqMessages")
    assert (dlq["MetricName"], dlq["Namespace"], dlq["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "AWS/SQS",
        0,
    )
    assert dlq["ComparisonOperator"] == "GreaterThanThreshold"
    assert dlq["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("QueuesDeadLetterQueue")
    oldest = alarm(env, "OldestDialTask")
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert oldest["Threshold"] == env.settings.queue.oldest_message_alarm_seconds
    assert oldest["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("QueuesDialTasks")


@pytest.mark.parametrize("name", ["Enrichment", "Dialer"])
def test_function_error_rate_and_throttle_alarms(env, name):
    rate = alarm(env, f"{name}ErrorRate")
    assert rate["Threshold"] == 5
    [expression] = [m for m in rate["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "100 * errors / invocations"
    assert sorted(m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m) == [
        "Errors",
        "Invocations",
    ]
    throttles = alarm(env, f"{name}Throttles")
    assert (throttles["MetricName"], throttles["Threshold"]) == ("Throttles", 0)
    fn, _ = function(env, name)
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": fn}}]


@pytest.mark.parametrize(
    "metric",
    [
        "ExecutionFailed",
        "EnrichmentStageFailed",
        "TargetStageFailed",
        # A worker outage fails some records of each batch, and a slow one times executions out.
        "TargetStagePartiallyFailed",
        "ExecutionPartiallyFailed",
        "ExecutionTimeout",
    ],
)
def test_pipe_alarms(env, metric):
    props = alarm(env, f"Pipe{metric}")
    pipe, _ = only(env, "AWS::Pipes::Pipe")
    assert props["Namespace"] == "AWS/EventBridge/Pipes"
    assert props["MetricName"] == metric
    assert props["Dimensions"] == [{"Name": "PipeName", "Value": {"Ref": pipe}}]
    assert props["Threshold"] == 0


def test_database_alarms(env):
    assert alarm(env, "DatabaseCpu")["MetricName"] == "CPUUtilization"
    storage = alarm(env, "DatabaseFreeStorage")
    assert storage["ComparisonOperator"] == "LessThanThreshold"
    assert storage["Threshold"] == env.settings.database.allocated_storage_gb * 0.1 * 1024**3
    connections = alarm(env, "DatabaseConnections")
    assert connections["Threshold"] == int(env.settings.database.max_connections * 0.8)


def test_cache_alarms_on_every_node(env):
    cache, _ = only(env, "AWS::ElastiCache::ReplicationGroup")
    for node in range(1, 2 + env.settings.cache.replicas):
        for metric, name in [
            ("EngineCPUUtilization", "CacheCpu"),
            ("DatabaseMemoryUsagePercentage", "CacheMemory"),
            ("Evictions", "CacheEvictions"),
        ]:
            props = alarm(env, f"{name}Node{node}")
            assert props["Namespace"] == "AWS/ElastiCache" and props["MetricName"] == metric
            assert props["Dimensions"] == [
                {"Name": "CacheClusterId", "Value": {"Fn::Join": ["", [{"Ref": cache}, f"-{node:03d}"]]}}
            ]


def test_dialer_metric_alarms(env):
    share = alarm(env, "RateLimitedShare")
    assert share["Threshold"] == 20
    [expression] = [m for m in share["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "100 * deferred / (sent + deferred)"
    dimensions = {}
    for stat in (m["MetricStat"] for m in share["Metrics"] if "MetricStat" in m):
        assert stat["Metric"]["Namespace"] == env.settings.metrics_namespace
        dimensions[stat["Metric"]["MetricName"]] = stat["Metric"]["Dimensions"]
    # The share counts tasks that waited for a slot only: not Redis outages, windows or live calls.
    assert dimensions == {
        "Deferred": [{"Name": "Reason", "Value": "rate"}, {"Name": "service", "Value": "dialer-worker"}],
        "DialsSent": [{"Name": "service", "Value": "dialer-worker"}],
    }
    redis = alarm(env, "RedisUnavailable")
    assert (redis["Namespace"], redis["MetricName"], redis["Threshold"]) == (
        env.settings.metrics_namespace,
        "RedisUnavailable",
        0,
    )
    assert redis["Dimensions"] == [{"Name": "service", "Value": "dialer-worker"}]
    reset = alarm(env, "ClaimsKeyspaceReset")
    assert (reset["MetricName"], reset["Threshold"], reset["Dimensions"]) == (
        "ClaimsKeyspaceReset",
        0,
        [{"Name": "service", "Value": "dialer-worker"}],
    )


def test_dashboard_shows_queue_depth_and_achieved_cps_on_top(env):
    _, dashboard = only(env, "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == env.settings.stack_name
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    titles = [
        "Queue depth",
        "Achieved CPS",
        "Rate-limited share",
        "Redis unavailable",
        "Pipe failures",
        "RDS",
        "ElastiCache",
    ]
    positions = [body.find(t) for t in titles]
    assert -1 not in positions, dict(zip(titles, positions, strict=False))
    assert positions[:2] == sorted(positions)[:2]
    assert "sent / PERIOD(sent)" in body


def test_every_environment_is_in_the_app(synthesized_app):
    _, stacks, _, _ = synthesized_app
    assert sorted(stacks) == sorted(ENVIRONMENTS)


def test_postgresql_logs_exported_with_the_environments_retention(env):
    instance, props = only(env, "AWS::RDS::DBInstance")
    assert props["Properties"]["EnableCloudwatchLogsExports"] == ["postgresql"]
    [retention] = resources(env, "Custom::LogRetention").values()
    assert retention["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["/aws/rds/instance/", {"Ref": instance}, "/postgresql"]]
    }
    assert retention["Properties"]["RetentionInDays"] >= env.settings.log_retention_days


def test_no_fixed_physical_names_that_collide_or_block_replacement(env):
    """A fixed name collides with another stack in the account and blocks any replacement."""
    _, instance = only(env, "AWS::RDS::DBInstance")
    assert "DBInstanceIdentifier" not in instance["Properties"]
    for lid, group in resources(env, "AWS::Logs::LogGroup").items():
        assert "LogGroupName" not in group["Properties"], lid
    for lid, proxy in resources(env, "AWS::RDS::DBProxy").items():
        # CloudFormation requires a proxy name: the stack's name keeps it unique in the account.
        assert proxy["Properties"]["DBProxyName"] == f"{env.settings.stack_name}-campaigns", lid


# -- call events --------------------------------------------------------------------------------


def test_call_events_queue_has_its_own_dlq_and_a_send_only_managed_policy(env):
    queue = logical_id(env, "CallEventsQueuesCallEvents", "AWS::SQS::Queue")
    dlq = logical_id(env, "CallEventsQueuesDeadLetterQueue", "AWS::SQS::Queue")
    props = env.template_json["Resources"][queue]["Properties"]
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": env.settings.queue.max_receive_count,
    }
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == 6 * env.settings.call_events.timeout_seconds
    [(policy_id, policy)] = resources(env, "AWS::IAM::ManagedPolicy").items()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "SendCallEvents",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        }
    ]
    outputs = env.template_json["Outputs"]
    assert outputs["CallEventsQueueUrl"]["Value"] == {"Ref": queue}
    assert outputs["CallEventsSendPolicyArn"]["Value"] == {"Ref": policy_id}


def test_the_outputs_are_the_ones_stacks_outputs_names_and_dialctl_reads_a_subset(env):
    from dialctl.targets import OUTPUTS
    from stacks.outputs import Output

    assert set(env.template_json["Outputs"]) == {str(o) for o in Output}
    assert set(OUTPUTS) <= set(Output)


def test_call_events_function_reads_the_queue_with_batch_item_failures(env):
    fn, props = function(env, "CallEvents")
    queue = logical_id(env, "CallEventsQueuesCallEvents", "AWS::SQS::Queue")
    [mapping] = [
        m
        for m in resources(env, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fn}
    ]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] <= env.settings.call_events.reserved_concurrency
    variables = props["Environment"]["Variables"]
    assert variables["ANSWER_RATE_WINDOW"] == str(env.settings.answer_rate_window)
    assert variables["ANSWER_RATE_MIN_SAMPLES"] == str(env.settings.answer_rate_min_samples)
    assert variables["ANSWER_RATE_COOL_DOWN_SECONDS"] == str(env.settings.answer_rate_cool_down_seconds)
    assert variables["MAX_CALL_SECONDS"] == str(env.settings.max_call_seconds)
    assert variables["REDIS_TLS"] == "true" and "REDIS_AUTH_SECRET_ARN" in variables


def test_max_concurrent_calls_is_a_second_stack_parameter(env):
    parameter = env.template_json["Parameters"]["MaxConcurrentCalls"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0
    assert parameter["Default"] == env.settings.max_concurrent_calls


def test_alarm_when_dials_are_sent_but_no_call_event_comes(env):
    silent = [p for lid, p in alarms(env).items() if lid.startswith("MonitoringCallEventsSilent")]
    [props] = silent
    expressions = [m.get("Expression") for m in props["Metrics"] if m.get("Expression")]
    assert expressions == ["IF(FILL(sent, 0) > 0 AND FILL(events, 0) == 0, 1, 0)"]
    periods = {m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}
    assert periods == {env.settings.call_events_silence_alarm_minutes * 60}
    assert any(lid.startswith("MonitoringCallEventsDlqMessages") for lid in alarms(env))


def test_every_security_group_description_is_one_ec2_accepts(env):
    """EC2 refuses a GroupDescription outside this character set (an apostrophe, say) at deploy."""
    allowed = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*$")
    for lid, group in resources(env, "AWS::EC2::SecurityGroup").items():
        description = group["Properties"]["GroupDescription"]
        assert not isinstance(description, str) or allowed.fullmatch(description), (lid, description)
