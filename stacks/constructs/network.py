"""The VPC the functions, the database and the cache live in."""

from __future__ import annotations

from aws_cdk import Fn, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

# CDK's rule that matches no traffic (ICMP type 252 code 86 to 255.255.255.255/32).
NO_TRAFFIC_EGRESS = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}


def egress_only_by_rules(*groups: ec2.SecurityGroup) -> None:
    """Keep EC2's default allow-all egress off groups whose egress are all separate rules to other
    security groups (AWS::EC2::SecurityGroupEgress). CDK leaves such a group with no inline egress,
    and EC2 gives a group created without egress rules its allow-all rule, which separate rules
    added later do not remove. The inline rule that matches no traffic prevents that. Only for
    groups without inline egress of their own: this replaces the inline list."""
    for group in groups:
        cfn = group.node.default_child
        assert isinstance(cfn, ec2.CfnSecurityGroup)
        cfn.add_property_override("SecurityGroupEgress", [NO_TRAFFIC_EGRESS])


class Network(Construct):
    """Public subnets only for the NAT gateways; Lambdas in private subnets with egress (the Node.js
    worker sits outside the VPC, reached through NAT); RDS and ElastiCache in isolated subnets.

    Interface endpoints keep the AWS calls the functions make off the internet. They are closed by
    default: whoever needs one is let in by security group (`allow_from_*`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        max_azs: int,
        nat_gateways: int,
        flow_log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)

        # The stack is environment-agnostic, where CDK would only see two AZs; name them by index
        # so `max_azs` (3 in prod) holds in any region with that many zones.
        azs = [Fn.select(i, Fn.get_azs()) for i in range(max_azs)]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=azs,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="functions", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        self.function_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.flow_log_group = logs.LogGroup(
            self, "FlowLogGroup", retention=flow_log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        # Secrets Manager: the functions read the DB secret and the Redis token; the rotation
        # function rotates the DB secret from inside the VPC.
        self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManagerEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.function_subnets,
            open=False,
        )
        # SQS: the dialer re-sends deferred tasks to the dial-tasks queue.
        self.sqs_endpoint = self.vpc.add_interface_endpoint(
            "SqsEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SQS,
            subnets=self.function_subnets,
            open=False,
        )
        # SSM: the dialer reads the live MAX_CPS parameter (at most once per 10 s per container).
        self.ssm_endpoint = self.vpc.add_interface_endpoint(
            "SsmEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SSM,
            subnets=self.function_subnets,
            open=False,
        )

    def allow_ssm_from(self, *peers: ec2.IConnectable) -> None:
        for peer in peers:
            self.ssm_endpoint.connections.allow_default_port_from(peer, "SSM over HTTPS")

    def allow_secrets_manager_from(self, *peers: ec2.IConnectable) -> None:
        for peer in peers:
            self.secrets_manager_endpoint.connections.allow_default_port_from(peer, "Secrets Manager over HTTPS")

    def allow_sqs_from(self, *peers: ec2.IConnectable) -> None:
        for peer in peers:
            self.sqs_endpoint.connections.allow_default_port_from(peer, "SQS over HTTPS")
