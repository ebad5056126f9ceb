"""`PYTHONPATH=lambdas python -m db_migrate [--dsn DSN]`: applies migrations/ to a database.

Without --dsn it uses DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD (defaults: 127.0.0.1:5432,
database postgres, user postgres) and creates the database first if it does not exist.
"""

from __future__ import annotations

import argparse
import sys

import psycopg
from psycopg import sql

from db_migrate.migrate import apply_migrations
from shared.postgres import connection_params


def _create_database_if_missing(params: dict) -> None:
    admin = {**params, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(params["dbname"])))
            print(f"created database {params['dbname']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="db_migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a libpq connection string; default: the DB_* variables")
    args = parser.parse_args(argv)
    if args.dsn:
        conn = psycopg.connect(args.dsn, connect_timeout=5)
    else:
        params = connection_params()
        _create_database_if_missing(params)
        conn = psycopg.connect(**params, connect_timeout=5)
    with conn:
        applied = apply_migrations(conn)
    print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
