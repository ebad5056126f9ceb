"""Deploy-time trigger: applies migrations/ to RDS so a fresh environment works after `cdk deploy`."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from db_migrate import core
from db_migrate.env import MigrationEnv
from shared.observability import MIGRATION_SERVICE

logger = Logger(service=MIGRATION_SERVICE)


@logger.inject_lambda_context
def handler(event, context):
    # Read on every invocation: the trigger runs once per deploy, in a container of its own.
    # Raising fails the trigger, and with it the deployment: no environment without its schema.
    response, report = core.process(MigrationEnv.from_environ())
    logger.info("migrations applied", extra={"applied": report.applied, "logins": report.logins})
    return response
