"""The migration's work, without Lambda: apply migrations/ to the database and, with the reader's
secret, give the enrichment's read-only role its login."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from db_migrate.env import MigrationEnv
from db_migrate.migrate import apply_migrations, migrations_dir, set_reader_login
from shared.postgres import SecretFetch, connection_params, fetch_secret


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]
    reader_login: bool  # campaigns_reader got LOGIN and its secret's password


def process(
    env: MigrationEnv, *, connect: Callable[..., Any] = psycopg.connect, get_secret: SecretFetch = fetch_secret
) -> tuple[dict, MigrationReport]:
    """Raises on any database fault: the trigger fails, and with it the deployment."""
    with connect(**connection_params(env, get_secret=get_secret), connect_timeout=10) as conn:
        applied = apply_migrations(conn, migrations_dir(env.migrations_dir))
        if env.reader_secret_arn:
            reader = get_secret(env.reader_secret_arn, False)
            set_reader_login(conn, reader["username"], reader["password"])
    return {"applied": applied}, MigrationReport(applied=applied, reader_login=bool(env.reader_secret_arn))
