#!/usr/bin/env python3
"""CDK entry point: every environment's stack (DialPipeline-dev, -staging, -prod), cdk-nag checked."""

from aws_cdk import App

from stacks.app_builder import build_app

app = App()
build_app(app)
app.synth()
