"""Month arithmetic of the retention job (UTC months, as the partitions are)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from call_ledger.retention import month_start, next_month


def test_month_start_is_the_utc_month_whatever_the_offset():
    # 00:30 on 1 March in UTC+2 is still February in UTC.
    assert month_start(datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == datetime(
        2026, 2, 1, tzinfo=UTC
    )


def test_next_month_rolls_over_the_year():
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
