"""Deploy-time trigger: applies migrations/ to RDS so a fresh environment works after `cdk deploy`."""

from __future__ import annotations

import psycopg
from aws_lambda_powertools import Logger

from db_migrate.env import MigrationEnv
from db_migrate.migrate import apply_migrations, migrations_dir, set_reader_login
from shared.observability import MIGRATION_SERVICE
from shared.postgres import connection_params, fetch_secret

logger = Logger(service=MIGRATION_SERVICE)


@logger.inject_lambda_context
def handler(event, context):
    env = MigrationEnv.from_environ()
    # Raising fails the trigger, and with it the deployment: no environment without its schema.
    with psycopg.connect(**connection_params(env), connect_timeout=10) as conn:
        applied = apply_migrations(conn, migrations_dir(env.migrations_dir))
        if env.reader_secret_arn:
            reader = fetch_secret(env.reader_secret_arn)
            set_reader_login(conn, reader["username"], reader["password"])
    logger.info("migrations applied", extra={"applied": applied, "reader_login": bool(env.reader_secret_arn)})
    return {"applied": applied}
