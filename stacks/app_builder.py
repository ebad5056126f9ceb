"""Builds the whole CDK app: one stack per environment, checked by cdk-nag.

`app.py` and the infrastructure tests both call `build_app`, so the tests synthesize exactly what
`cdk synth` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.pipeline_stack import DialPipelineStack
from stacks.settings import ENVIRONMENTS, Settings, check_account_concurrency


def build_app(app: App, environments: Iterable[Settings] | None = None) -> dict[str, DialPipelineStack]:
    environments = list(environments or ENVIRONMENTS.values())
    # Before any construct: a clear error instead of a failed deploy.
    check_account_concurrency(environments)
    stacks = {}
    for settings in environments:
        env = None
        if settings.account or settings.region:
            env = Environment(account=settings.account, region=settings.region)
        stacks[settings.name] = DialPipelineStack(app, settings.stack_name, settings=settings, env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
