"""The migration function's environment: the database, and where the SQL files are."""

from __future__ import annotations

from dataclasses import dataclass

from shared.env_contract import variable
from shared.postgres import DatabaseEnv


@dataclass(frozen=True, kw_only=True)
class MigrationEnv(DatabaseEnv):
    # Unset: migrations/ beside the package (the Lambda asset's layout) or the repository's.
    migrations_dir: str | None = variable("MIGRATIONS_DIR", default=None)
    # The enrichment's read-only role's secret ({"username": "campaigns_reader", "password": ...}).
    # Set: after the migrations, that role gets LOGIN and this password. Unset: it stays NOLOGIN.
    reader_secret_arn: str | None = variable("READER_SECRET_ARN", default=None)
    # The ledger writer's role's secret ({"username": "call_ledger_writer", ...}), the same way.
    ledger_writer_secret_arn: str | None = variable("LEDGER_WRITER_SECRET_ARN", default=None)
