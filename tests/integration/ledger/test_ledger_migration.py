"""migrations/0004_call_attempts.sql against real PostgreSQL: monthly partitions with a default
one, the enums' checks, and no access for the enrichment's read-only role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from psycopg import errors

from db_migrate.migrate import READER_ROLE


def partitions(conn) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'call_attempts'::regclass ORDER BY c.relname"
    ).fetchall()
    return [name for (name,) in rows]


def test_this_month_and_three_ahead_exist_beside_the_default(conn):
    now = datetime.now(UTC)
    names = partitions(conn)
    assert "call_attempts_default" in names
    assert f"call_attempts_y{now:%Y}m{now:%m}" in names
    assert len([n for n in names if n.startswith("call_attempts_y")]) == 4


def test_a_month_without_a_partition_lands_in_the_default_and_moves_out_when_created(conn):
    conn.execute(
        "INSERT INTO call_attempts (call_id, campaign_id, recorded_at) VALUES ('far', 'c', '2099-05-31T23:59:59Z')"
    )
    conn.execute(
        "INSERT INTO call_attempts (call_id, campaign_id, recorded_at) VALUES ('next', 'c', '2099-06-01T00:00:00Z')"
    )
    assert conn.execute("SELECT count(*) FROM call_attempts_default").fetchone()[0] == 2

    assert (
        conn.execute("SELECT call_attempts_add_month('2099-05-15T12:00:00Z')").fetchone()[0] == "call_attempts_y2099m05"
    )
    assert (
        conn.execute("SELECT call_attempts_add_month('2099-05-01T00:00:00Z')").fetchone()[0] == "call_attempts_y2099m05"
    )

    where = dict(conn.execute("SELECT call_id, tableoid::regclass::text FROM call_attempts").fetchall())
    assert where == {"far": "call_attempts_y2099m05", "next": "call_attempts_default"}


@pytest.mark.parametrize(
    "column, value",
    [("disposition", "deferred"), ("outcome", "hung_up"), ("attempt", -1), ("duration_seconds", -0.5)],
)
def test_values_outside_the_vocabulary_are_refused(conn, column, value):
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            f"INSERT INTO call_attempts (call_id, campaign_id, recorded_at, {column}, ended_at) VALUES ('x', 'c', now(), %s, now())",
            (value,),
        )


def test_a_drop_without_its_reason_is_refused(conn):
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "INSERT INTO call_attempts (call_id, campaign_id, recorded_at, disposition) VALUES ('x', 'c', now(), 'dropped')"
        )


def test_the_enrichments_reader_cannot_see_the_ledger(conn):
    for table in ("call_attempts", "call_attempts_default", "call_attempt_keys"):
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            assert not conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (READER_ROLE, table, privilege)
            ).fetchone()[0]
