"""Redis lost and restored from the ledger, end to end on real PostgreSQL and Redis: calls admitted
and settled by the real admission scripts, their attempt records written to the ledger, every key
lost; then the dialers hold, the ledger's restore runs, and the script refuses every call the
worker had accepted (0 re-POSTs), admits new ones and holds the recipient limit again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.env import dialer_env

from call_ledger import restore, store
from call_ledger.records import AttemptRecord
from call_ledger.restore_request import handle_restore
from dialer_worker.admission import AdmissionRequest, Decision, RedisPacer, RestoreState, Settled
from shared.redis_client import redis_client
from shared.redis_keys import recipient_hash
from shared.restore_request import RestoreRequest

HASH_KEY = b"test-recipient-key"
LIMIT = 3
CLAIM_TTL_S = 3600


class LedgerEnv:
    """The two fields of the ledger's environment a restore reads."""

    def __init__(self, prefix):
        self.redis_key_prefix = prefix
        self.claim_ttl_seconds = CLAIM_TTL_S


@pytest.fixture
def redis(redis_server, redis_key_prefix):
    client = redis_client(dialer_env(host=redis_server.host, port=redis_server.port, key_prefix=redis_key_prefix))
    yield client
    for key in client.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000):
        client.delete(key)
    client.close()


def phone(n):
    # Calls 0-2 go to one number: it reaches the limit; every other call has a number of its own.
    return "+15550000000" if n < LIMIT else f"+1555{n:07d}"


def task(n):
    record = AttemptRecord.dialed(
        campaign_id="c-1", contact_id=f"contact-{n}", attempt=0, phone_number=phone(n),
        task={"campaignId": "c-1", "contactId": f"contact-{n}"}, sent_at=datetime.now(UTC),
    )  # fmt: skip
    return record, AdmissionRequest(record.call_id, "c-1", recipient=recipient_hash(HASH_KEY, phone(n)))


def reserve(pacer, requests):
    return pacer.reserve(requests, max_cps=1000, max_wait_ms=10_000, lease_ms=20_000)


def test_after_a_loss_no_accepted_call_is_admitted_again(conn, redis, redis_key_prefix):
    pacer = RedisPacer(
        redis, prefix=redis_key_prefix, claim_ttl_seconds=CLAIM_TTL_S, recipient_daily_limit=LIMIT,
        restore_hold_seconds=20,
    )  # fmt: skip
    first = reserve(pacer, [AdmissionRequest("warm-up", "c-1")])  # a new stack's first batch: no loss seen, no hold
    assert first.restore is RestoreState.NONE and first.epoch
    redis.set(pacer.keys.restored(first.epoch), "x")

    calls = [task(n) for n in range(40)]
    admitted = reserve(pacer, [request for _, request in calls])
    assert [a.decision for a in admitted.admissions] == [Decision.DIAL] * 40
    settled = Settled(
        accepted=[r.call_id for r, _ in calls],
        recipients={q.call_id: q.recipient for _, q in calls if q.recipient is not None},
    )
    pacer.finish(settled, successes=40, max_cps=1000)
    # What the dialer's records say: each admitted at its slot, accepted by the worker.
    admitted_at = datetime.now(UTC)
    records = [AttemptRecord(**{**vars(r), "admitted_at": admitted_at}) for r, _ in calls]
    store.write(conn, records, admitted_at)

    for key in list(redis.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000)):
        redis.delete(key)  # the loss (only this test's keys: the Redis is shared)
    new = [task(n) for n in range(40, 45)]
    held = reserve(pacer, [request for _, request in calls + new])
    assert held.restore is RestoreState.STARTED
    assert {a.decision for a in held.admissions} == {Decision.RESTORING}

    report = handle_restore(
        conn, redis, LedgerEnv(redis_key_prefix), RestoreRequest(held.epoch, datetime.now(UTC)).to_json(),
        datetime.now(UTC), recipient_key=HASH_KEY,
    )  # fmt: skip
    assert isinstance(report, restore.RestoreReport)
    assert (report.claims, report.recipient_calls) == (40, 40)

    again = reserve(pacer, [request for _, request in calls + new])
    decisions = [a.decision for a in again.admissions]
    assert again.restore is RestoreState.NONE
    assert decisions[:40] == [Decision.DUPLICATE] * 40  # 0 re-POSTs
    assert decisions[40:45] == [Decision.DIAL] * 5
    # Beyond the restored calls the recipient limit holds: the number's three calls are back.
    over = AdmissionRequest(task(46)[0].call_id, "c-1", recipient=recipient_hash(HASH_KEY, phone(0)))
    assert [a.decision for a in reserve(pacer, [over]).admissions] == [Decision.RECIPIENT_LIMIT]
