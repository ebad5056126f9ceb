"""The call ledger end to end through the local pipeline: the real functions, PostgreSQL, Redis,
SQS and the worker stand-in. Every task that names its call gets exactly one row (dialed, or
dropped with its reason); a no_answer call is retried exactly once by its campaign's policy and
an answered one never; and with the ledger's PostgreSQL stopped mid-run dialing goes on, the
records wait in their queue, and every one is written once PostgreSQL is back, none twice."""

from __future__ import annotations

import time

import psycopg
import pytest

from local_pipeline import database
from local_pipeline.services import ThrowawayPostgres
from shared.dial_task import call_id_for

from .conftest import tasks

pytestmark = pytest.mark.slow

POLICY = {"retry": {"no_answer": {"afterSeconds": 1, "maxAttempts": 2}}}


def rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT campaign_id, contact_id, attempt, disposition, reason, outcome, call_id, parent_call_id"
            " FROM call_attempts ORDER BY campaign_id, contact_id, attempt"
        ).fetchall()


def test_one_row_per_task_and_exactly_one_retry_per_unanswered_call(local_run):
    run = local_run(
        campaigns=[("retried", "active", POLICY), ("answers", "active", POLICY), ("stopped", "stopped")],
        max_cps=50,
    )
    run.worker.duration_s = 0.3
    # Every call to `retried` ends no_answer or busy (only no_answer is retried); every one to `answers` is answered.
    run.worker.answer_rates = {"retried": 0.0, "answers": 1.0}
    named = [
        {"campaignId": "ghost", "contactId": "g", "phoneNumber": "+14155550000"},
        {"campaignId": "stopped", "contactId": "s", "phoneNumber": "+14155550001"},
        {"campaignId": "retried", "contactId": "bad-phone", "phoneNumber": "12345"},
    ]
    unnamed = [{"campaignId": "retried", "phoneNumber": "+14155550002"}]  # no contactId: no row
    run.enqueue(tasks(12, "retried") + tasks(8, "answers", start=100) + named + unnamed)
    summary = run.run(timeout=120, until_ledger_settles=True)
    assert summary.drained and summary.lost == 0 and summary.dialed_twice == 0, summary

    found = rows(run.dsn)
    by_key = {}
    for row in found:
        assert (row[0], row[1], row[2]) not in by_key, f"two rows for one attempt: {row}"
        by_key[(row[0], row[1], row[2])] = row
    assert all(row[3] in ("dialed", "dropped") for row in found), "every row has its disposition"
    # Drops that name their call, with their reasons.
    assert {k: v[4] for k, v in by_key.items() if v[3] == "dropped"} == {
        ("ghost", "g", 0): "unknown_campaign",
        ("stopped", "s", 0): "campaign_inactive",
        ("retried", "bad-phone", 0): "invalid_phone_number",
    }
    first = {k: v for k, v in by_key.items() if k[0] == "retried" and k[2] == 0 and v[3] == "dialed"}
    assert len(first) == 12 and all(v[5] in ("no_answer", "busy") for v in first.values())
    # Exactly one retry per no_answer call: attempts + 1, pointing at its parent; none after busy.
    retries = {k: v for k, v in by_key.items() if k[2] > 0}
    expected = {(c, contact, 1) for (c, contact, _), v in first.items() if v[5] == "no_answer"}
    assert set(retries) == expected and expected, (retries, first)
    for (c, contact, attempt), v in retries.items():
        assert v[3] == "dialed" and v[7] == call_id_for(c, contact, 0) and v[6] == call_id_for(c, contact, attempt)
    # The worker saw each retry once (its own callId), and nothing after an answered call.
    assert summary.dialed == 12 + 8 + len(expected)
    answered = {k: v for k, v in by_key.items() if k[0] == "answers"}
    assert len(answered) == 8 and {v[5] for v in answered.values()} == {"answered"}


def test_ledger_postgres_stopped_mid_run_dialing_goes_on_and_no_record_is_lost(local_run, postgres_server):
    # The ledger on a PostgreSQL of its own, stopped while the campaigns' (the shared server,
    # never stopped) keeps serving the enrichment.
    ledger_pg = ThrowawayPostgres().start()
    try:
        database.prepare(ledger_pg.server, "ledger")
        run = local_run(max_cps=50, ledger_database=(ledger_pg.server, "ledger"), ledger_visibility_timeout_seconds=3)
        run.worker.duration_s = 0.2
        ledger_pg.stop()
        run.enqueue(tasks(30))
        dialed_while_down = []

        def come_back(r):
            deadline = time.monotonic() + 30
            while len(r.worker.accepted()) < 30 and time.monotonic() < deadline:
                time.sleep(0.2)
            dialed_while_down.append(len(r.worker.accepted()))
            time.sleep(2)  # records keep failing meanwhile
            ledger_pg.start()

        summary = run.run(timeout=150, during=come_back, until_ledger_settles=True)
        assert dialed_while_down == [30], "dialing went on without the ledger's PostgreSQL"
        assert summary.drained and summary.dialed == 30 and summary.dialed_twice == 0, summary
        assert summary.extra["ledger_mapping"]["failed_batches"] >= 1, summary.extra
        # No record reached the DLQ. The fresh run's restore request may have (the ledger's database
        # was down for longer than its receives): the dialers' hold timed out and dialing went on.
        assert [b for b in run.record_queues.dlq_bodies() if '"kind":"restore"' not in b] == []
        with psycopg.connect(ledger_pg.server.dsn("ledger")) as conn:
            total, distinct, dialed, ended = conn.execute(
                "SELECT count(*), count(DISTINCT call_id), count(*) FILTER (WHERE disposition = 'dialed'),"
                " count(*) FILTER (WHERE outcome IS NOT NULL) FROM call_attempts"
            ).fetchone()
            keys = conn.execute("SELECT count(*) FROM call_attempt_keys").fetchone()[0]
        assert (total, distinct, dialed, ended, keys) == (30, 30, 30, 30, 30)
    finally:
        ledger_pg.destroy()
