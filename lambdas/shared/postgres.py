"""The campaigns database: its environment contract and psycopg connection parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.env_contract import EnvContract, at_least, variable


@dataclass(frozen=True, kw_only=True)
class DatabaseEnv(EnvContract):
    """In AWS the RDS-generated secret (DB_SECRET_ARN) holds host, port, database and credentials,
    and DB_HOST, when also set, wins over its host (the RDS Proxy endpoint). Locally, DB_*."""

    secret_arn: str | None = variable("DB_SECRET_ARN", default=None)
    host: str | None = variable("DB_HOST", default=None)
    port: int = variable("DB_PORT", default=5432, check=at_least(1))
    name: str = variable("DB_NAME", default="postgres")
    user: str = variable("DB_USER", default="postgres")
    password: str = variable("DB_PASSWORD", default="")
    sslmode: str = variable("DB_SSLMODE", default="prefer")


def connection_params(env: DatabaseEnv) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect(). The secret is fetched once per container and
    cached by Powertools; in AWS, SSL is required."""
    if env.secret_arn:
        # Imported here: the local path and the tests need no AWS SDK call.
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(env.secret_arn, transform="json", max_age=3600)
        return {
            "host": env.host or secret["host"],
            "port": int(secret.get("port", 5432)),
            "dbname": secret.get("dbname", "postgres"),
            "user": secret["username"],
            "password": secret["password"],
            "sslmode": "require",
        }
    return {
        "host": env.host or "127.0.0.1",
        "port": env.port,
        "dbname": env.name,
        "user": env.user,
        "password": env.password,
        "sslmode": env.sslmode,
    }
