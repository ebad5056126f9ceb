"""Synthesizes the whole CDK app once per session, exactly as app.py builds it.

Bundling is skipped (`aws:cdk:bundling-stacks` empty), so no Docker, no pip, no network. The
context is cdk.json's, as the CDK CLI would pass it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import App, Validations
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from stacks.pipeline_stack import DialPipelineStack
from stacks.settings import ENVIRONMENTS, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`--dist loadgroup`), every test of the synthesized app runs on one worker,
    so the app is synthesized once, not once per worker; the others run anywhere. First among the
    hooks: xdist reads the markers in a hook of its own, which may be called before this one
    (tests/conftest.py says where the group then goes)."""
    for item in items:
        if "synthesized_app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("cdk-synth"))


def cdk_context() -> dict:
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    context["aws:cdk:bundling-stacks"] = []
    return context


@dataclass
class Synthesized:
    settings: Settings
    stack: DialPipelineStack
    template: Template
    template_json: dict


@pytest.fixture(scope="session")
def synthesized_app(tmp_path_factory):
    """(app, stacks by environment name, the cloud assembly directory, synth error or None)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context(), outdir=str(outdir))
    stacks = build_app(app)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail validation; the templates are written anyway
        error = exc
    return app, stacks, outdir, error


@pytest.fixture(scope="session", params=sorted(ENVIRONMENTS))
def env(request, synthesized_app) -> Synthesized:
    """One environment's synthesized stack; tests using it run once per environment."""
    _, stacks, outdir, _ = synthesized_app
    stack = stacks[request.param]
    template_json = json.loads((Path(outdir) / f"{stack.artifact_id}.template.json").read_text())
    return Synthesized(ENVIRONMENTS[request.param], stack, Template.from_json(template_json), template_json)


def _by_name(synthesized_app, name: str) -> Synthesized:
    _, stacks, outdir, _ = synthesized_app
    stack = stacks[name]
    template_json = json.loads((Path(outdir) / f"{stack.artifact_id}.template.json").read_text())
    return Synthesized(ENVIRONMENTS[name], stack, Template.from_json(template_json), template_json)


@pytest.fixture(scope="session")
def dev(synthesized_app) -> Synthesized:
    return _by_name(synthesized_app, "dev")


@pytest.fixture(scope="session")
def prod(synthesized_app) -> Synthesized:
    return _by_name(synthesized_app, "prod")


def acknowledgements(scope) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every cdk-nag acknowledgement under `scope`."""
    found = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            for rule, reason in entry.data.items():
                rule = rule.split("::", 1)[1] if rule.lower().startswith("annotation::") else rule
                if rule.startswith("AwsSolutions-"):
                    found.append((construct.node.path, rule, reason))
    return found
