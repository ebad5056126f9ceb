"""Retention against real PostgreSQL: whole months past the limit go, with their calls' keys and
any of their rows left in the default partition; the next months are created ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from call_ledger import retention, store
from call_ledger.records import OutcomeRecord


def record_at(conn, call_id, at):
    store.write(conn, [OutcomeRecord(call_id, "c-1", "busy", at)], at)


def test_months_past_the_limit_are_dropped_whole_and_the_next_ones_created(conn):
    for month in (1, 2, 3, 4):
        conn.execute("SELECT call_attempts_add_month(%s)", (datetime(2020, month, 1, tzinfo=UTC),))
    record_at(conn, "jan", datetime(2020, 1, 10, tzinfo=UTC))
    record_at(conn, "end-of-march", datetime(2020, 3, 31, 23, 59, 59, tzinfo=UTC))
    record_at(conn, "april", datetime(2020, 4, 1, tzinfo=UTC))
    record_at(conn, "in-default", datetime(2019, 5, 5, tzinfo=UTC))  # a month never created

    now = datetime(2020, 6, 15, 12, tzinfo=UTC)
    result = retention.enforce(conn, now, retention_days=60)  # everything before 2020-04-16 may go

    assert result.dropped == ("call_attempts_y2020m01", "call_attempts_y2020m02", "call_attempts_y2020m03")
    assert result.created == tuple(f"call_attempts_y2020m{m:02d}" for m in (6, 7, 8, 9))
    assert (result.keys_deleted, result.default_rows_deleted) == (3, 1)
    assert [r[0] for r in conn.execute("SELECT call_id FROM call_attempts ORDER BY call_id")] == ["april"]
    assert [r[0] for r in conn.execute("SELECT call_id FROM call_attempt_keys")] == ["april"]

    again = retention.enforce(conn, now, retention_days=60)
    assert (again.dropped, again.created, again.keys_deleted) == ((), (), 0)


def test_the_current_month_survives_the_shortest_retention(conn):
    now = datetime.now(UTC)
    record_at(conn, "today", now)
    result = retention.enforce(conn, now + timedelta(hours=1), retention_days=1)
    assert f"call_attempts_y{now:%Y}m{now:%m}" not in result.dropped
    assert conn.execute("SELECT count(*) FROM call_attempts").fetchone()[0] == 1


def test_a_retention_under_a_day_is_refused(conn):
    with pytest.raises(ValueError, match="at least 1"):
        retention.enforce(conn, datetime.now(UTC), retention_days=0)
