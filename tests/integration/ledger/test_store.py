"""store.write against real PostgreSQL: one row per callId whatever arrives twice or out of order,
outcomes before their attempt kept as orphans and merged, concurrent writers agreeing on a row."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from call_ledger import store
from call_ledger.records import AttemptRecord, OutcomeRecord
from shared.drops import DropReason

NOW = datetime.now(UTC).replace(microsecond=0)
TASK = {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": "+15551234567", "attempts": 0}


def dialed(contact="k-1", attempt=0, sent_at=NOW, admitted_at=None, **extra):
    return AttemptRecord.dialed(
        campaign_id="c-1",
        contact_id=contact,
        attempt=attempt,
        phone_number="+15551234567",
        task={**TASK, "contactId": contact, "attempts": attempt},
        sent_at=sent_at,
        admitted_at=admitted_at,
        **extra,
    )


def outcome_of(record, outcome="busy", ended_at=NOW + timedelta(seconds=30)):
    return OutcomeRecord(record.call_id, record.campaign_id, outcome, ended_at, 21.0)


def rows(conn, call_id=None):
    query = (
        "SELECT call_id, campaign_id, contact_id, attempt, disposition, reason, sent_at, admitted_at,"
        " outcome, duration_seconds, task_body, tableoid::regclass::text AS part FROM call_attempts"
    )
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        if call_id:
            return cur.execute(query + " WHERE call_id = %s", (call_id,)).fetchall()
        return cur.execute(query + " ORDER BY call_id").fetchall()


def test_a_redelivered_record_makes_no_second_row(conn):
    record = dialed()
    first = store.write(conn, [record], NOW)
    again = store.write(conn, [record, record], NOW + timedelta(minutes=5))
    assert (first.inserted, first.merged) == (1, 0)
    assert (again.call_ids, again.inserted) == ((record.call_id,), 0)
    (row,) = rows(conn)
    assert row["disposition"] == "dialed" and row["task_body"] == record.task


def test_an_outcome_before_its_attempt_is_an_orphan_until_the_attempt_merges_into_it(conn):
    attempt = dialed()
    store.write(conn, [outcome_of(attempt)], NOW)
    assert store.orphans(conn, timedelta(minutes=1), NOW + timedelta(minutes=2)) == 1
    assert store.orphans(conn, timedelta(minutes=5), NOW + timedelta(minutes=2)) == 0, "only the older ones"

    result = store.write(conn, [attempt], NOW + timedelta(minutes=2))
    assert result.inserted == 0
    (row,) = rows(conn)
    assert (row["disposition"], row["contact_id"], row["outcome"], row["duration_seconds"]) == (
        "dialed",
        "k-1",
        "busy",
        21.0,
    )
    assert store.orphans(conn, timedelta(0), NOW + timedelta(days=1)) == 0


def test_any_order_and_any_batching_of_a_calls_records_gives_the_same_row(ledger_dsn):
    attempt = dialed(admitted_at=NOW - timedelta(seconds=2))
    # The same attempt handled twice (a redelivery after Redis lost its claim): the earlier times stay.
    later_go = dialed(sent_at=NOW + timedelta(seconds=9), admitted_at=NOW + timedelta(seconds=8))
    records = [attempt, later_go, outcome_of(attempt), outcome_of(attempt)]
    seen = []
    for order in itertools.permutations(records):
        for split in (1, 2, 4):
            with psycopg.connect(ledger_dsn, autocommit=True) as conn:
                conn.execute("TRUNCATE call_attempts, call_attempt_keys")
                for start in range(0, 4, split):
                    store.write(conn, order[start : start + split], NOW)
                seen.append([{k: v for k, v in row.items()} for row in rows(conn)])
    assert all(result == seen[0] for result in seen)
    (row,) = seen[0]
    assert row["sent_at"] == NOW and row["admitted_at"] == NOW - timedelta(seconds=2)
    assert row["outcome"] == "busy"


def test_the_zones_a_call_was_judged_in_are_kept_from_its_dialed_record(conn):
    judged = dialed(time_zones=("America/New_York",))
    store.write(conn, [outcome_of(judged)], NOW)
    store.write(conn, [judged, dialed()], NOW)  # a duplicate's record carries none
    store.write(conn, [dialed(time_zones=("Etc/UTC",))], NOW)
    assert conn.execute("SELECT time_zones FROM call_attempts").fetchall() == [("America/New_York",)]


def test_dialed_wins_over_dropped_in_either_order(conn):
    dropped = AttemptRecord.dropped(
        campaign_id="c-1", contact_id="k-1", attempt=0, reason=DropReason.WORKER_REJECTED, dropped_at=NOW
    )
    store.write(conn, [dropped], NOW)
    store.write(conn, [dialed(worker_status=202)], NOW)
    store.write(conn, [dropped], NOW)
    (row,) = rows(conn)
    assert row["disposition"] == "dialed"
    assert row["reason"] == "worker_rejected", "what happened first is kept beside it"


def test_a_duplicates_dialed_record_never_turns_a_rejected_call_into_a_call(ledger_dsn):
    """The dialer's duplicate (no worker status) repeats what the claim says; a refused call's
    claim says the same as a taken one's. Only the worker's own status is evidence of a call."""
    rejected = AttemptRecord.dropped(
        campaign_id="c-1", contact_id="k-1", attempt=0, reason=DropReason.WORKER_REJECTED, dropped_at=NOW
    )
    duplicate = dialed()
    for batches in (
        [[rejected], [duplicate]],
        [[duplicate], [rejected]],
        [[rejected, duplicate]],
        [[duplicate, rejected]],
    ):
        with psycopg.connect(ledger_dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE call_attempts, call_attempt_keys")
            for batch in batches:
                store.write(conn, batch, NOW)
            (row,) = rows(conn)
        assert (row["disposition"], row["reason"]) == ("dropped", "worker_rejected"), batches
    # A duplicate of a call the worker took stays what it was: dialed.
    with psycopg.connect(ledger_dsn, autocommit=True) as conn:
        store.write(conn, [dialed("k-2", worker_status=202)], NOW)
        store.write(conn, [dialed("k-2")], NOW)
        assert rows(conn, dialed("k-2").call_id)[0]["disposition"] == "dialed"


def test_a_batch_writes_many_calls_in_one_statement(conn):
    records = [dialed(contact=f"k-{i}") for i in range(50)]
    records += [outcome_of(r) for r in records[:10]]
    result = store.write(conn, records, NOW)
    assert (len(result.call_ids), result.inserted) == (50, 50)
    assert conn.execute("SELECT count(*) FROM call_attempts WHERE outcome = 'busy'").fetchone()[0] == 10


def test_a_call_stays_in_the_month_it_was_first_recorded_in(conn):
    january = datetime(2099, 1, 31, 23, 59, 59, tzinfo=UTC)
    conn.execute(
        "SELECT call_attempts_add_month(%s), call_attempts_add_month(%s)", (january, january + timedelta(days=1))
    )
    attempt = dialed()
    store.write(conn, [outcome_of(attempt)], january)
    store.write(conn, [attempt], january + timedelta(seconds=2))
    (row,) = rows(conn)
    assert row["part"] == "call_attempts_y2099m01"
    assert row["disposition"] == "dialed"


def test_concurrent_writers_of_one_call_in_different_months_make_one_row(ledger_dsn):
    """The first writer holds its transaction open; the second, with a clock in the next month,
    waits for it on the call's key and then merges into the first's row."""
    attempt = dialed()
    january = datetime(2099, 1, 31, 23, 59, 59, tzinfo=UTC)
    with psycopg.connect(ledger_dsn, autocommit=True) as setup:
        setup.execute(
            "SELECT call_attempts_add_month(%s), call_attempts_add_month(%s)", (january, january + timedelta(days=1))
        )
    first = psycopg.connect(ledger_dsn)  # not autocommit: stays open until commit()
    first.execute("SELECT 1")
    store.write(first, [outcome_of(attempt)], january)
    errors: list[Exception] = []

    def second_writer():
        try:
            with psycopg.connect(ledger_dsn, autocommit=True) as second:
                store.write(second, [attempt], january + timedelta(seconds=2))
        except Exception as exc:  # asserted below
            errors.append(exc)

    thread = threading.Thread(target=second_writer)
    thread.start()
    with psycopg.connect(ledger_dsn, autocommit=True) as watcher:
        # Wait (bounded) until the second writer is blocked on the first's lock, so the test
        # really exercises the race rather than running the two one after the other.
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                break
            threading.Event().wait(0.05)
        assert waiting == 1
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert errors == []
    with psycopg.connect(ledger_dsn, autocommit=True) as conn:
        (row,) = rows(conn)
    assert row["part"] == "call_attempts_y2099m01"
    assert (row["disposition"], row["outcome"]) == ("dialed", "busy")
