"""The migration's work, without Lambda: apply migrations/ to the database and, with each role's
secret, give the enrichment's read-only role and the ledger writer's role their logins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from db_migrate.env import MigrationEnv
from db_migrate.migrate import READER_ROLE, WRITER_ROLE, apply_migrations, migrations_dir, set_login
from shared.postgres import SecretFetch, connection_params, fetch_secret


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]
    # The roles that got LOGIN and their secret's password (those whose secret was given).
    logins: list[str]


def process(
    env: MigrationEnv, *, connect: Callable[..., Any] = psycopg.connect, get_secret: SecretFetch = fetch_secret
) -> tuple[dict, MigrationReport]:
    """Raises on any database fault: the trigger fails, and with it the deployment."""
    with connect(**connection_params(env, get_secret=get_secret), connect_timeout=10) as conn:
        applied = apply_migrations(conn, migrations_dir(env.migrations_dir))
        logins = []
        for role, arn in ((READER_ROLE, env.reader_secret_arn), (WRITER_ROLE, env.ledger_writer_secret_arn)):
            if arn:
                secret = get_secret(arn, False)
                set_login(conn, role, secret["username"], secret["password"])
                logins.append(role)
    return {"applied": applied}, MigrationReport(applied=applied, logins=logins)
