"""Connection parameters for the campaigns database, from Secrets Manager in AWS or DB_* locally."""

from __future__ import annotations

import os
from typing import Any


def connection_params() -> dict[str, Any]:
    """Keyword arguments for psycopg.connect().

    In AWS, DB_SECRET_ARN names the RDS-generated JSON secret (fetched once per container and
    cached by Powertools) and SSL is required; DB_HOST, when also set, wins over the secret's
    host (the RDS Proxy endpoint). Locally, DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD.
    """
    secret_arn = os.environ.get("DB_SECRET_ARN")
    if secret_arn:
        # Imported here: the local path and the tests need no AWS SDK call.
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(secret_arn, transform="json", max_age=3600)
        return {
            "host": os.environ.get("DB_HOST") or secret["host"],
            "port": int(secret.get("port", 5432)),
            "dbname": secret.get("dbname", "postgres"),
            "user": secret["username"],
            "password": secret["password"],
            "sslmode": "require",
        }
    return {
        "host": os.environ.get("DB_HOST", "127.0.0.1"),
        "port": int(os.environ.get("DB_PORT", "5432")),
        "dbname": os.environ.get("DB_NAME", "postgres"),
        "user": os.environ.get("DB_USER", "postgres"),
        "password": os.environ.get("DB_PASSWORD", ""),
        "sslmode": os.environ.get("DB_SSLMODE", "prefer"),
    }
