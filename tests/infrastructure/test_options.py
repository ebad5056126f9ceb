"""Options that no shipped environment uses yet, and the Docker-free bundling command."""

from __future__ import annotations

import dataclasses
import re

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from stacks.constructs.bundling import MIGRATIONS_DIR, PipLocalBundling
from stacks.pipeline_stack import DialPipelineStack
from stacks.settings import DEV, ENVIRONMENTS, PROD, check_account_concurrency

from .conftest import cdk_context


def test_alarm_email_from_settings_is_the_parameters_default():
    settings = dataclasses.replace(DEV, alarm_email="oncall@example.com")
    stack = DialPipelineStack(App(context=cdk_context()), settings.stack_name, settings=settings)
    template = Template.from_stack(stack)
    template.has_parameter("AlarmEmail", {"Default": "oncall@example.com"})
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}})


def test_alarm_email_in_settings_must_be_an_address():
    with pytest.raises(ValueError, match="not an e-mail address"):
        dataclasses.replace(DEV, alarm_email="oncall")


def test_pip_installs_wheels_for_the_lambda_platform_only():
    command = PipLocalBundling(function="dialer_worker").pip_command("/out")
    joined = " ".join(command)
    assert "--only-binary=:all:" in command
    assert "--python-version 3.13" in joined
    assert "--platform manylinux_2_28_aarch64" in joined and "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert command[-2:] == ["-r", str(PipLocalBundling(function="dialer_worker").requirements)]
    assert "--target /out" in joined
    assert "--no-deps" in command, "botocore stays out of the package: the runtime has it"


@pytest.mark.parametrize("function", ["enrich_dial_task", "dialer_worker", "db_migrate", "call_ledger"])
def test_function_requirements_pin_their_whole_closure(function):
    """With --no-deps, an unpinned or missing dependency would fail on the first import in AWS."""
    import importlib.metadata as md
    import re

    path = PipLocalBundling(function=function).requirements
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    pins = dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[a-z,]+\])?==(\S+)", line).groups() for line in lines if line)
    norm = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    assert "botocore" not in norm and "boto3" not in norm
    for name in norm:
        for requirement in md.requires(name) or []:
            dep = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower().replace("_", "-")
            optional = "extra ==" in requirement
            platform_only = "sys_platform" in requirement or "version <" in requirement  # Lambda runs 3.13
            if not optional and not platform_only and dep not in ("botocore", "boto3"):
                assert dep in norm, f"{function}: {name} needs {dep}, which is not pinned"


def test_asset_hash_follows_the_packaged_sources():
    dialer = PipLocalBundling(function="dialer_worker")
    assert dialer.asset_hash() == PipLocalBundling(function="dialer_worker").asset_hash()
    assert dialer.asset_hash() != PipLocalBundling(function="enrich_dial_task").asset_hash()
    # The migration package carries migrations/, so a new migration is a new asset.
    migration = PipLocalBundling(function="db_migrate", extra_dirs=[MIGRATIONS_DIR])
    assert migration.sources[-1] == MIGRATIONS_DIR


def test_bundling_refuses_a_function_without_its_sources(tmp_path):
    bundling = PipLocalBundling(function="no_such_function")
    with pytest.raises(FileNotFoundError, match="no_such_function"):
        bundling.try_bundle(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_worker_url_from_settings_is_validated_and_becomes_the_default():
    settings = dataclasses.replace(DEV, node_worker_url="https://dial-worker.dev.example.com")
    stack = DialPipelineStack(App(context=cdk_context()), settings.stack_name, settings=settings)
    Template.from_stack(stack).has_parameter("WorkerUrl", {"Default": "https://dial-worker.dev.example.com"})
    with pytest.raises(ValueError, match="not an http\\(s\\) URL on port 443"):
        dataclasses.replace(DEV, node_worker_url="http://dial-worker.dev.example.com:8080")


@pytest.mark.parametrize(
    "port,good,bad",
    [
        (443, "https://w.example.com", "http://w.example.com"),
        (80, "http://w.example.com:80/api", "https://w.example.com"),
        (8080, "http://w.example.com:8080", "http://w.example.com"),
    ],
)
def test_worker_url_must_use_the_port_the_dialer_may_reach(port, good, bad):
    settings = dataclasses.replace(DEV, node_worker_port=port)
    assert re.fullmatch(settings.worker_url_pattern, good)
    assert not re.fullmatch(settings.worker_url_pattern, bad)


def test_reserved_concurrency_per_environment():
    assert {name: s.reserved_concurrency_total for name, s in ENVIRONMENTS.items()} == {
        "dev": 18,
        "staging": 48,
        "prod": 158,
    }


def test_synth_fails_when_one_environment_reserves_more_than_the_quota():
    with pytest.raises(
        ValueError, match=r"prod: the functions reserve 158 .* more than the 100 the account may reserve"
    ):
        dataclasses.replace(PROD, account_concurrency_quota=200)


def test_synth_fails_when_environments_in_one_account_together_exceed_the_quota():
    small = [dataclasses.replace(s, account_concurrency_quota=300) for s in ENVIRONMENTS.values()]
    with pytest.raises(ValueError, match=r"dev 18 \+ staging 48 \+ prod 158 = 224 .* more than the 200"):
        build_app(App(context=cdk_context()), small)
    # The same environments in separate accounts fit.
    apart = [dataclasses.replace(s, account=f"11111111111{i}") for i, s in enumerate(small)]
    check_account_concurrency(apart)
    check_account_concurrency(ENVIRONMENTS.values())


def test_bundling_leaves_out_the_phone_data_no_handler_loads(tmp_path):
    from stacks.constructs.bundling import NEVER_LOADED, prune

    for relative in (*NEVER_LOADED, "phonenumbers/data", "phonenumbers/tzdata", "phonenumbers/shortdata"):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "__init__.py").write_text("")
    assert prune(str(tmp_path)) == list(NEVER_LOADED)
    left = sorted(p.name for p in (tmp_path / "phonenumbers").iterdir())
    assert left == ["data", "shortdata", "tzdata"]  # parsing, short numbers and time zones stay
