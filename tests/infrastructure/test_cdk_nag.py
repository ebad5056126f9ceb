"""cdk-nag AwsSolutions: zero unacknowledged findings, and each acknowledgement narrow and needed."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.app_builder import build_app
from stacks.settings import ENVIRONMENTS

from .conftest import acknowledgements, cdk_context


def test_the_app_synthesizes_without_validation_errors(synthesized_app):
    # cdk-nag 3 is a validation plugin: any unacknowledged finding makes app.synth() raise.
    _, _, _, error = synthesized_app
    assert error is None, f"validation failed: {error}"


def test_no_unacknowledged_findings(env):
    report = AwsSolutionsChecks().validate_scope(env.stack)
    findings = [f"{v.rule_name} at {r.construct_path}" for v in report.violations for r in v.violating_resources]
    assert findings == []
    assert report.success


def test_acknowledgements_are_narrow_and_explained(env):
    acks = acknowledgements(env.stack)
    assert acks, "expected the documented acknowledgements"
    for path, rule, reason in acks:
        # Never on the stack itself or a whole construct group: on the resource that trips the rule.
        assert path.count("/") >= 2, f"{rule} acknowledged too broadly at {path}"
        assert len(reason) > 60, f"{rule} at {path}: reason too thin"


def test_dev_acknowledges_what_prod_fixes(dev, prod):
    dev_rules = {rule for _, rule, _ in acknowledgements(dev.stack)}
    prod_rules = {rule for _, rule, _ in acknowledgements(prod.stack)}
    for rule in ("AwsSolutions-RDS3", "AwsSolutions-RDS10", "AwsSolutions-AEC4"):
        assert rule in dev_rules and rule not in prod_rules


def test_every_acknowledgement_is_still_needed(monkeypatch):
    """Without the acknowledgements, cdk-nag reports exactly the acknowledged findings: none is stale."""
    app = App(context=cdk_context())
    stacks = build_app(app, ENVIRONMENTS.values())
    acknowledged = {(path, rule) for stack in stacks.values() for path, rule, _ in acknowledgements(stack)}

    bare_app = App(context=cdk_context())
    monkeypatch.setattr(Validations, "acknowledge", lambda self, *rules: None)
    bare = build_app(bare_app, ENVIRONMENTS.values())
    found = set()
    for stack in bare.values():
        for violation in AwsSolutionsChecks().validate_scope(stack).violations:
            for resource in violation.violating_resources:
                # Findings name the CfnResource; acknowledgements sit on it or its L2 parent.
                path = resource.construct_path.removesuffix("/Resource")
                found.add((path, violation.rule_name))
    assert found == acknowledged
