"""The ledger's restore on real PostgreSQL and Redis: the rows of accepted calls come back as the
admission script's own keys, so the script refuses those calls again (DUPLICATE) and counts them
against their numbers (RECIPIENT_LIMIT)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.env import dialer_env

from call_ledger import restore, store
from call_ledger.records import AttemptRecord
from call_ledger.restore_request import handle_restore
from dialer_worker.admission import AdmissionRequest, Decision, Keys, RedisPacer
from shared.drops import DropReason
from shared.redis_client import redis_client
from shared.redis_keys import RECIPIENT_WINDOW_US, recipient_hash
from shared.restore_request import RestoreRequest

PHONE, OTHER = "+15551230001", "+15551230002"
HASH_KEY = b"test-recipient-key"
CLAIM_TTL_S = 2 * 3600


@pytest.fixture
def redis(redis_server, redis_key_prefix):
    client = redis_client(dialer_env(host=redis_server.host, port=redis_server.port, key_prefix=redis_key_prefix))
    yield client
    for key in client.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000):
        client.delete(key)
    client.close()


class LedgerEnv:
    """The two fields of the ledger's environment a restore reads."""

    def __init__(self, prefix):
        self.redis_key_prefix = prefix
        self.claim_ttl_seconds = CLAIM_TTL_S


def dialed(contact, at, phone=PHONE):
    return AttemptRecord.dialed(
        campaign_id="c-1",
        contact_id=contact,
        attempt=0,
        phone_number=phone,
        task={"campaignId": "c-1", "contactId": contact},
        sent_at=at + timedelta(seconds=1),
        admitted_at=at,
    )


def micros(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def test_rows_come_back_as_the_scripts_keys(conn, redis, redis_key_prefix):
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    recent, older = dialed("recent", now - timedelta(hours=1)), dialed("older", now - timedelta(hours=3))
    elsewhere = dialed("elsewhere", now - timedelta(minutes=30), phone=OTHER)
    rejected = AttemptRecord.dropped(
        campaign_id="c-1",
        contact_id="rejected",
        attempt=0,
        reason=DropReason.WORKER_REJECTED,
        dropped_at=now - timedelta(minutes=10),
        phone_number=PHONE,
    )
    dnc = AttemptRecord.dropped(
        campaign_id="c-1",
        contact_id="dnc",
        attempt=0,
        reason=DropReason.DO_NOT_CALL,
        dropped_at=now - timedelta(minutes=10),
        phone_number=PHONE,
    )
    store.write(conn, [recent, older, elsewhere, rejected, dnc], now)
    keys = Keys(redis_key_prefix)

    report = restore.apply(
        conn,
        redis,
        redis_key_prefix,
        RestoreRequest("1764676800000000", now),
        now,
        CLAIM_TTL_S,
        recipient_key=HASH_KEY,
    )

    assert (report.claims, report.recipients, report.recipient_calls) == (3, 2, 4)
    # Claims: settled ('a', as finish.lua leaves them) for what is left of their TTL; not the
    # older call (past its TTL) nor the task never dialed.
    for record, left in (
        (recent, timedelta(hours=1)),
        (elsewhere, timedelta(hours=1.5)),
        (rejected, timedelta(hours=1, minutes=50)),
    ):
        assert redis.get(keys.claim(record.call_id)) == b"a"
        assert (
            left.total_seconds() * 1000 - 5000 < redis.pttl(keys.claim(record.call_id)) <= left.total_seconds() * 1000
        )
    assert redis.get(keys.claim(older.call_id)) is None and redis.get(keys.claim(dnc.call_id)) is None
    # Recipients: the number's keyed hash, members the claim keys, scores the admissions (µs),
    # kept a window after the newest; a dropped task never counted.
    counted = redis.zrange(keys.recipient(recipient_hash(HASH_KEY, PHONE)), 0, -1, withscores=True)
    assert counted == [
        (keys.claim(older.call_id).encode(), micros(older.admitted_at)),
        (keys.claim(recent.call_id).encode(), micros(recent.admitted_at)),
        (keys.claim(rejected.call_id).encode(), micros(rejected.dropped_at)),
    ]
    newest = rejected.dropped_at - now + timedelta(microseconds=RECIPIENT_WINDOW_US)
    ttl = redis.pttl(keys.recipient(recipient_hash(HASH_KEY, PHONE)))
    assert newest.total_seconds() * 1000 - 5000 < ttl <= newest.total_seconds() * 1000 + 1000
    assert redis.zcard(keys.recipient(recipient_hash(HASH_KEY, OTHER))) == 1
    # The epoch the request names (Redis had none), and last the mark the dialers wait for.
    assert redis.get(keys.epoch) == b"1764676800000000"
    assert redis.get(keys.restored("1764676800000000")) == now.isoformat().encode()
    assert 0 < redis.ttl(keys.restored("1764676800000000")) <= 3600


def test_an_epoch_already_there_is_kept(conn, redis, redis_key_prefix):
    keys = Keys(redis_key_prefix)
    redis.set(keys.epoch, "2")
    restore.apply(conn, redis, redis_key_prefix, RestoreRequest("1", datetime.now(UTC)), datetime.now(UTC), 60)
    assert redis.get(keys.epoch) == b"2" and redis.exists(keys.restored("1"))


def pacer(redis, prefix, limit=0):
    return RedisPacer(redis, prefix=prefix, claim_ttl_seconds=CLAIM_TTL_S, recipient_daily_limit=limit)


def reserve(p, *requests):
    return [a.decision for a in p.reserve(list(requests), max_cps=100, max_wait_ms=5000, lease_ms=20_000).admissions]


def test_a_restored_claim_is_a_duplicate_to_the_script(conn, redis, redis_key_prefix):
    now = datetime.now(UTC)
    accepted = dialed("accepted", now - timedelta(minutes=5))
    store.write(conn, [accepted], now)
    restore.apply(conn, redis, redis_key_prefix, RestoreRequest("1", now), now, CLAIM_TTL_S)
    fresh = dialed("fresh", now)
    assert reserve(
        pacer(redis, redis_key_prefix),
        AdmissionRequest(accepted.call_id, "c-1"),
        AdmissionRequest(fresh.call_id, "c-1"),
    ) == [Decision.DUPLICATE, Decision.DIAL]


def test_restored_recipient_counts_hold_the_limit(conn, redis, redis_key_prefix):
    now = datetime.now(UTC)
    store.write(conn, [dialed(f"c{i}", now - timedelta(hours=i + 1)) for i in range(3)], now)
    store.write(conn, [dialed("other", now - timedelta(hours=1), phone=OTHER)], now)

    body = RestoreRequest("1", now).to_json()
    report = handle_restore(conn, redis, LedgerEnv(redis_key_prefix), body, now, recipient_key=HASH_KEY)
    assert isinstance(report, restore.RestoreReport) and report.recipient_calls == 4
    p = pacer(redis, redis_key_prefix, limit=3)
    to_phone = AdmissionRequest(dialed("next", now).call_id, "c-1", recipient=recipient_hash(HASH_KEY, PHONE))
    to_other = AdmissionRequest(dialed("next2", now).call_id, "c-1", recipient=recipient_hash(HASH_KEY, OTHER))
    assert reserve(p, to_phone, to_other) == [Decision.RECIPIENT_LIMIT, Decision.DIAL]


def test_a_malformed_request_is_a_drop_that_writes_nothing(conn, redis, redis_key_prefix):
    for body, reason in (
        ("{", "invalid_json"),
        (
            '{"kind": "restore", "v": 2, "epoch": "1", "requestedAt": "2026-12-02T12:00:00+00:00"}',
            "unsupported_version",
        ),
        ('{"kind": "restore", "v": 1, "epoch": "x", "requestedAt": "2026-12-02T12:00:00+00:00"}', "invalid_time"),
        ('{"kind": "restore", "v": 1, "epoch": "1", "requestedAt": "2026-12-02T12:00:00"}', "invalid_time"),
    ):
        drop = handle_restore(conn, redis, LedgerEnv(redis_key_prefix), body, datetime.now(UTC))
        assert not isinstance(drop, restore.RestoreReport) and str(drop.reason) == reason, body
    assert list(redis.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000)) == []
