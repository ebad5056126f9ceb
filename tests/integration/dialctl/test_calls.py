"""`dialctl calls` against a real ledger in PostgreSQL: every attempt to a number or contact,
oldest first, numbers masked unless --show-numbers; the campaign export as CSV; usage errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from call_ledger import store
from call_ledger.records import AttemptRecord, OutcomeRecord
from db_migrate.migrate import apply_migrations
from dialctl.cli import main
from shared.drops import DropReason

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
PHONE = "+14155550123"


@pytest.fixture
def ledger(postgres_server, fresh_database, tmp_path):
    """A migrated database with a contact's two attempts (the second a retry), another contact's
    drop, and a state file pointing --local at it."""
    dsn = postgres_server.dsn(fresh_database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
        body = {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": PHONE, "attempts": 0}
        first = AttemptRecord.dialed(
            campaign_id="c-1", contact_id="k-1", attempt=0, phone_number=PHONE, task=body, sent_at=T0, worker_status=202,
            time_zones=("America/Los_Angeles",),
        )  # fmt: skip
        retry = AttemptRecord.dialed(
            campaign_id="c-1", contact_id="k-1", attempt=1, phone_number=PHONE, task=body,
            sent_at=T0 + timedelta(hours=1),
        )  # fmt: skip
        store.write(conn, [first, OutcomeRecord(first.call_id, "c-1", "no_answer", T0 + timedelta(seconds=30))], T0)
        store.write_rows(conn, [{**retry.to_row(), "parent_call_id": first.call_id}], T0 + timedelta(hours=1))
        dropped = AttemptRecord.dropped(
            campaign_id="c-2", contact_id="k-1", attempt=0, reason=DropReason.DO_NOT_CALL,
            dropped_at=T0 - timedelta(days=1), phone_number=PHONE,
        )  # fmt: skip
        store.write(conn, [dropped], T0 - timedelta(days=1))
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"postgres_dsn": dsn}))
    return {"dsn": dsn, "state": str(state), "first": first, "retry": retry, "dropped": dropped}


def calls(capsys, ledger, *argv):
    code = main(["calls", "--local", "--state-file", ledger["state"], *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_attempt_to_a_number_oldest_first_masked(ledger, capsys):
    code, out, _ = calls(capsys, ledger, "--phone", PHONE, "--json")
    assert code == 0
    found = json.loads(out)["calls"]
    assert [(c["campaign_id"], c["attempt"], c["disposition"]) for c in found] == [
        ("c-2", 0, "dropped"),
        ("c-1", 0, "dialed"),
        ("c-1", 1, "dialed"),
    ]
    assert found[1]["outcome"] == "no_answer" and found[2]["parent_call_id"] == ledger["first"].call_id
    assert [c["time_zones"] for c in found] == [None, "America/Los_Angeles", None]
    assert {c["phone_number"] for c in found} == {"+*******0123"}
    code, out, _ = calls(capsys, ledger, "--contact", "k-1", "--campaign", "c-1", "--show-numbers")
    lines = out.splitlines()
    assert len(lines) == 2 and all(PHONE in line for line in lines)
    assert "no_answer" in lines[0] and f"retry of {ledger['first'].call_id}" in lines[1]
    assert "judged in America/Los_Angeles" in lines[0] and "judged in" not in lines[1]


def test_a_contact_never_called(ledger, capsys):
    assert calls(capsys, ledger, "--contact", "nobody")[1] == "no calls recorded\n"


def test_export_writes_a_campaigns_rows_as_csv(ledger, capsys):
    code, out, _ = calls(capsys, ledger, "export", "--campaign", "c-1", "--since", "2026-11-30")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["attempt"] for r in rows] == ["0", "1"]
    assert rows[0]["phone_number"] == "+*******0123" and rows[0]["sent_at"] == "2026-11-30T15:00:00Z"
    _, out, _ = calls(
        capsys, ledger, "export", "--campaign", "c-1", "--since", "2026-11-30", "--until", "2026-11-30T15:30:00Z"
    )
    assert len(list(csv.DictReader(io.StringIO(out)))) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--phone NUMBER or --contact ID"),
        (["export", "--campaign", "c-1"], "--campaign and --since are required"),
    ],
)
def test_usage_errors(ledger, capsys, argv, message):
    code, _, err = calls(capsys, ledger, *argv)
    assert code == 2 and message in err


def test_a_stack_needs_a_database_url(capsys):
    assert main(["calls", "--stack", "DialPipeline-dev", "--phone", PHONE]) == 2
    assert "--database-url" in capsys.readouterr().err
