"""Runtime control in the template: the live MAX_CPS parameter, the dialer's one grant on it, the
variable that names it, the SSM endpoint, and the outputs the operator CLI reads."""

from __future__ import annotations

from .test_pipeline_stack import as_list, function, logical_id, policy_statements, resources


def live_parameter(env) -> tuple[str, dict]:
    lid = logical_id(env, "LiveMaxCps", "AWS::SSM::Parameter")
    return lid, env.template_json["Resources"][lid]["Properties"]


def test_the_live_parameter_starts_at_the_ceiling_and_is_named_by_cloudformation(env):
    _, props = live_parameter(env)
    assert props["Type"] == "String"
    assert props["Value"] == {"Ref": "MaxCps"}
    assert "Name" not in props  # unique per stack: two environments in one account never collide


def test_the_dialer_is_told_the_parameter_name(env):
    lid, _ = live_parameter(env)
    _, dialer = function(env, "Dialer")
    assert dialer["Environment"]["Variables"]["MAX_CPS_PARAMETER_NAME"] == {"Ref": lid}
    assert dialer["Environment"]["Variables"]["MAX_CPS"] == {"Ref": "MaxCps"}


def test_the_dialer_may_only_get_that_one_parameter(env):
    lid, _ = live_parameter(env)
    ssm = [
        s
        for s in policy_statements(env, "FunctionsDialerRole")
        if any(a.startswith("ssm:") for a in as_list(s["Action"]))
    ]
    assert len(ssm) == 1
    [statement] = ssm
    assert statement["Effect"] == "Allow" and as_list(statement["Action"]) == ["ssm:GetParameter"]
    [resource] = as_list(statement["Resource"])
    # arn:<partition>:ssm:<region>:<account>:parameter/<the generated name>
    assert {"Ref": lid} in resource["Fn::Join"][1]


def test_no_other_role_may_read_or_change_it(env):
    for lid, policy in resources(env, "AWS::IAM::Policy").items():
        if lid.startswith("FunctionsDialerRole"):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(str(a).startswith("ssm:") for a in as_list(statement["Action"])), lid


def test_ssm_is_reached_through_an_interface_endpoint_open_to_the_dialer_only(env):
    endpoints = [
        p["Properties"] for p in resources(env, "AWS::EC2::VPCEndpoint").values()
        if ".ssm" in str(p["Properties"]["ServiceName"])
    ]  # fmt: skip
    assert len(endpoints) == 1 and endpoints[0]["VpcEndpointType"] == "Interface"
    ingress = [
        p["Properties"] for p in resources(env, "AWS::EC2::SecurityGroupIngress").values()
        if p["Properties"].get("Description") == "SSM over HTTPS"
    ]  # fmt: skip
    assert len(ingress) == 1
    assert ingress[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("FunctionsDialerSecurityGroup")


def test_outputs_for_the_operator_cli(env):
    outputs = env.template_json["Outputs"]
    lid, _ = live_parameter(env)
    assert outputs["LiveMaxCpsParameterName"]["Value"] == {"Ref": lid}
    assert outputs["MaxCpsCeiling"]["Value"] == {"Ref": "MaxCps"}
    assert outputs["DashboardName"]["Value"]["Ref"].startswith("MonitoringDashboard")
    assert outputs["MetricsNamespace"]["Value"] == env.settings.metrics_namespace
    assert outputs["DialTasksQueueUrl"]["Value"] == {"Ref": logical_id(env, "QueuesDialTasks", "AWS::SQS::Queue")}
    assert outputs["DialTasksDlqUrl"]["Value"] == {"Ref": logical_id(env, "QueuesDeadLetterQueue", "AWS::SQS::Queue")}
