"""The AWS SDK clients the functions make, imported on first use: boto3 comes with the Lambda
runtime (not packaged), and importing it at cold start would cost every Init, used or not."""

from __future__ import annotations

from typing import Any


def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")


def ssm_client() -> Any:
    import boto3

    return boto3.client("ssm")
