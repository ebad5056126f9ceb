"""`python -m db_migrate [--dsn DSN]`: applies migrations/ to a database.

Without --dsn it uses the DB_* variables of the migration's environment contract (db_migrate/env.py;
defaults: 127.0.0.1:5432, user postgres; DB_NAME has no default) and creates the database first if
it does not exist.
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from db_migrate.env import MigrationEnv
from db_migrate.migrate import apply_migrations, create_database_if_missing, migrations_dir
from shared.postgres import connection_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="db_migrate", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", help="a libpq connection string; default: the DB_* variables")
    args = parser.parse_args(argv)
    env = MigrationEnv.from_environ()
    if args.dsn:
        conn = psycopg.connect(args.dsn, connect_timeout=5)
    else:
        params = connection_params(env)
        if create_database_if_missing(params):
            print(f"created database {params['dbname']}")
        conn = psycopg.connect(**params, connect_timeout=5)
    with conn:
        applied = apply_migrations(conn, migrations_dir(env.migrations_dir))
    print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
