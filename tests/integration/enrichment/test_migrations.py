"""The migration and its runner against real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import psycopg

from db_migrate.migrate import apply_migrations

ALL = [
    "0001_campaigns",
    "0002_campaigns_reader",
    "0003_do_not_call",
    "0004_call_attempts",
    "0005_call_ledger_writer",
    "0006_call_attempts_time_zones",
]


def test_applies_once_and_is_idempotent(postgres_server, fresh_database):
    with psycopg.connect(postgres_server.dsn(fresh_database), autocommit=True) as conn:
        assert apply_migrations(conn) == ALL
        assert apply_migrations(conn) == []
        cols = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'campaigns' ORDER BY ordinal_position"
        ).fetchall()
    assert cols == [
        ("id", "text"),
        ("name", "text"),
        ("status", "text"),
        ("config", "jsonb"),
        ("updated_at", "timestamp with time zone"),
    ]


def test_concurrent_runs_apply_each_file_once(postgres_server, fresh_database):
    results, errors = [], []

    def run():
        try:
            with psycopg.connect(postgres_server.dsn(fresh_database), autocommit=True) as conn:
                results.append(apply_migrations(conn))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[]] * 5 + [ALL]


def test_cli_creates_the_database_and_migrates(postgres_server):
    name = f"cli_{uuid.uuid4().hex[:10]}"
    env = {
        "PATH": "/usr/bin:/bin",
        "DB_HOST": postgres_server.host,
        "DB_PORT": str(postgres_server.port),
        "DB_NAME": name,
        "DB_USER": postgres_server.user,
        # The code under test, not whatever copy the virtualenv has installed.
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    try:
        first = subprocess.run([sys.executable, "-m", "db_migrate"], env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        assert f"applied: {', '.join(ALL)}" in first.stdout
        second = subprocess.run([sys.executable, "-m", "db_migrate"], env=env, capture_output=True, text=True)
        assert "nothing (up to date)" in second.stdout
    finally:
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
