"""What a Redis restore reads from the ledger, against real PostgreSQL: the claims of calls
admitted within the claim TTL and each number's calls within the recipient window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from call_ledger import restore, store
from call_ledger.records import AttemptRecord, OutcomeRecord
from shared.drops import DropReason

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PHONE, OTHER = "+15551230001", "+15551230002"


def dialed(contact, hours_ago, phone=PHONE):
    at = NOW - timedelta(hours=hours_ago)
    return AttemptRecord.dialed(
        campaign_id="c-1",
        contact_id=contact,
        attempt=0,
        phone_number=phone,
        task={"campaignId": "c-1", "contactId": contact},
        sent_at=at + timedelta(seconds=1),
        admitted_at=at,
    )


def dropped(contact, hours_ago, reason):
    return AttemptRecord.dropped(
        campaign_id="c-1",
        contact_id=contact,
        attempt=0,
        reason=reason,
        dropped_at=NOW - timedelta(hours=hours_ago),
        phone_number=PHONE,
    )


def test_claims_within_the_ttl_and_recipient_calls_within_the_window(conn):
    recent, older, stale = dialed("recent", 1), dialed("older", 3), dialed("stale", 25)
    rejected = dropped("rejected", 0.5, DropReason.WORKER_REJECTED)
    not_called = dropped("dnc", 0.5, DropReason.DO_NOT_CALL)
    elsewhere = dialed("elsewhere", 2.5, phone=OTHER)
    orphan = OutcomeRecord("unknown-call", "c-1", "busy", NOW - timedelta(minutes=5))
    store.write(conn, [recent, older, stale, rejected, not_called, elsewhere, orphan], NOW)

    data = restore.restore_data(conn, NOW, claim_ttl_seconds=2 * 3600, recipient_window=timedelta(hours=24))

    assert [c.call_id for c in data.claims] == [recent.call_id, rejected.call_id]
    assert data.claims[0].expires_at == NOW + timedelta(hours=1)
    assert data.claims[0].admitted_at == NOW - timedelta(hours=1)
    assert [c.call_id for c in data.recipients[PHONE]] == [older.call_id, recent.call_id, rejected.call_id]
    assert data.recipient_count(OTHER) == 1 and data.recipient_count("+15550000000") == 0


def test_the_read_uses_the_ledgers_index(conn):
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(
        row[0]
        for row in conn.execute(
            f"EXPLAIN SELECT call_id FROM call_attempts WHERE {restore._CLAIMED} AND {restore._AT} > %s", (NOW,)
        )
    )
    assert "Seq Scan" not in plan, plan
