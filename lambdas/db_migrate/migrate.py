"""Ordered, idempotent, concurrency-safe application of migrations/*.sql."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

# Any fixed number: every migrator takes the same transaction-scoped advisory lock, so two runs
# (a deploy and an operator, say) apply each file once, one after the other.
_LOCK_KEY = 7_340_001


def migrations_dir(configured: str | None = None) -> Path:
    """`configured` (MIGRATIONS_DIR) if set; else `migrations/` beside the package (the Lambda
    asset's layout); else the repository's top-level `migrations/`."""
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "migrations", here.parent.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no migrations/ directory near {here}; set MIGRATIONS_DIR")


def create_database_if_missing(params: dict) -> bool:
    """Creates params["dbname"] through the `postgres` database; True when it was created."""
    admin = {**params, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(params["dbname"])))
        return True


def apply_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Applies every migration not yet recorded in schema_migrations; returns the versions applied."""
    files = sorted((directory or migrations_dir()).glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no *.sql files in {directory or migrations_dir()}")
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for path in files:
            version = path.stem
            if version in done:
                continue
            # No parameters: psycopg sends the file as one simple query, several statements allowed.
            conn.execute(path.read_text(encoding="utf-8"))
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now


# The roles the migrations create NOLOGIN, each given LOGIN and its secret's password by the
# migration function: the enrichment's read-only one (0002) and the ledger writer's (0005).
# Multi-user rotation alternates each secret between the role and a `_clone` member of it.
READER_ROLE = "campaigns_reader"
WRITER_ROLE = "call_ledger_writer"


def set_login(conn: psycopg.Connection, role: str, username: str, password: str) -> None:
    """Gives `role` (READER_ROLE or WRITER_ROLE), or its rotation clone, as its secret names it,
    LOGIN and the secret's password. The password is hashed here (SCRAM, as the server would), so
    its clear text never reaches the server's statement log."""
    if role not in (READER_ROLE, WRITER_ROLE):
        raise ValueError(f"{role!r} is not a role the migrations create")
    if username not in (role, f"{role}_clone"):
        raise ValueError(f"the {role} secret names {username!r}, not {role!r}: refusing to change that role")
    hashed = conn.pgconn.encrypt_password(password.encode(), username.encode())
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(username), sql.Literal(hashed.decode()))
    )
