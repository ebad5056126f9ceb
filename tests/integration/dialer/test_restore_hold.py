"""Redis found empty, on real Redis and SQS: the dialer holds every task (`restoring`, no claim),
asks the ledger once for the claims back on the records queue, dials again once the ledger marks
the epoch restored, and after the hold's bound dials anyway and counts the alarm."""

from __future__ import annotations

import json

import pytest
from support.env import dialer_env

from dialer_worker.admission import Keys, RedisPacer
from dialer_worker.clients import build_clients
from dialer_worker.deferral import Deferrer
from dialer_worker.dispatch import Dispatcher
from dialer_worker.restore_requests import RestoreRequester
from dialer_worker.worker_client import WorkerClient
from shared.dial_task import EnrichedTask
from shared.drops import DeferReason
from shared.observability import Metric
from shared.redis_client import redis_client

from .conftest import Remaining, item, late_check_fields

HOLD_S = 20


@pytest.fixture
def records_queue(sqs, redis_key_prefix):
    return sqs.create_queue(QueueName=f"call-records-{redis_key_prefix}")["QueueUrl"]


@pytest.fixture
def make_dialer(request, redis_server, redis_key_prefix, worker, sqs, queue_url, records_queue):
    created = []

    def make(restore="queue"):
        config = dialer_env(
            worker_url=worker.url,
            key_prefix=redis_key_prefix,
            defer_queue_url=queue_url,
            call_records_queue_url=records_queue,
            restore_hold_seconds=HOLD_S,
            host=redis_server.host,
            port=redis_server.port,
            **late_check_fields(request),
        )
        client = redis_client(config)
        requester = RestoreRequester(records_queue, lambda: sqs) if restore == "queue" else restore
        d = Dispatcher(
            config=config,
            pacer=RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=3600, restore_hold_seconds=HOLD_S),
            worker=WorkerClient(worker.url),
            deferrer=Deferrer(queue_url, lambda: sqs),
            restore=requester,
        )
        created.append((d, client))
        return d, client

    yield make
    for d, client in created:
        d.worker.close()
        client.close()


def requests_sent(sqs, records_queue):
    messages = sqs.receive_message(QueueUrl=records_queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def item_call_id(n):
    parsed = EnrichedTask.from_item(item(n))
    assert isinstance(parsed, EnrichedTask)
    return parsed.call_id


def lose_everything(redis, prefix):
    """The failover that lost writes (only this test's keys: the Redis is shared)."""
    for key in list(redis.scan_iter(match=f"{{{prefix}}}:*", count=10_000)):
        redis.delete(key)


def test_an_empty_redis_holds_dialing_until_restored(
    make_dialer, redis_key_prefix, worker, sqs, records_queue, late_check_off
):
    d, redis = make_dialer()
    other, _ = make_dialer()
    keys = Keys(redis_key_prefix)
    first = d.run([item(0)], Remaining(15))  # an epoch this container knows
    # A new stack's first batch: no loss seen, so no hold and no request.
    assert first.counts[Metric.DIALS_SENT] == 1 and not first.restore_requested
    assert len(worker.accepted()) == 1 and requests_sent(sqs, records_queue) == []

    lose_everything(redis, redis_key_prefix)
    held = d.run([item(1), item(2)], Remaining(15))
    assert held.claims_reset and held.restore_requested
    assert held.deferrals == {DeferReason.RESTORING: 2} and held.counts[Metric.DIALS_SENT] == 0
    epoch = redis.get(keys.epoch).decode()
    # No claim taken while held: the ledger's restore may yet say these were dialed.
    assert redis.get(keys.claim(item_call_id(1))) is None
    sent = requests_sent(sqs, records_queue)
    assert [(r["kind"], r["v"], r["epoch"]) for r in sent] == [("restore", 1, epoch)] and sent[0]["requestedAt"]
    # Every container holds; only the one whose batch found Redis empty asks.
    again = other.run([item(3)], Remaining(15))
    assert again.deferrals == {DeferReason.RESTORING: 1} and not again.restore_requested
    assert requests_sent(sqs, records_queue) == []

    redis.set(keys.restored(epoch), "x")  # what the ledger sets once the keys are back
    resumed = other.run([item(1), item(2), item(3)], Remaining(15))
    assert resumed.counts[Metric.DIALS_SENT] == 3 and not resumed.deferrals
    assert not redis.exists(keys.restoring) and len(worker.accepted()) == 4
    assert d.run([item(4)], Remaining(15)).counts[Metric.DIALS_SENT] == 1


def test_past_its_bound_the_hold_ends_with_the_alarm(make_dialer, redis_key_prefix, worker, late_check_off):
    d, redis = make_dialer()
    keys = Keys(redis_key_prefix)
    d.run([item(0)], Remaining(15))  # an epoch this container knows
    lose_everything(redis, redis_key_prefix)
    assert d.run([item(1)], Remaining(15)).deferrals == {DeferReason.RESTORING: 1}
    # The hold began HOLD_S ago (no waiting in a test): the ledger never answered.
    began = int(redis.get(keys.restoring))
    redis.set(keys.restoring, str(began - HOLD_S * 1_000_000), keepttl=True)
    ended = d.run([item(1)], Remaining(15))
    assert ended.counts[Metric.RESTORE_TIMED_OUT] == 1 and ended.counts[Metric.DIALS_SENT] == 1
    after = d.run([item(2)], Remaining(15))
    assert after.counts[Metric.RESTORE_TIMED_OUT] == 0 and after.counts[Metric.DIALS_SENT] == 1
    assert len(worker.accepted()) == 3


class FailingOnce:
    def __init__(self):
        self.calls = []

    def request_restore(self, epoch, requested_at):
        self.calls.append(epoch)
        return "EndpointConnectionError" if len(self.calls) == 1 else None


def test_a_request_not_sent_is_sent_on_the_next_batch(make_dialer, redis_key_prefix):
    requester = FailingOnce()
    d, redis = make_dialer(restore=requester)
    d.run([item(0)], Remaining(15))  # an epoch this container knows
    lose_everything(redis, redis_key_prefix)
    first = d.run([item(1)], Remaining(15))
    assert first.restore_error == "EndpointConnectionError" and not first.restore_requested
    second = d.run([item(1)], Remaining(15))
    assert second.restore_requested and second.deferrals == {DeferReason.RESTORING: 1}
    d.run([item(1)], Remaining(15))
    assert len(requester.calls) == 2 and requester.calls[0] == requester.calls[1]


def test_without_a_records_queue_nothing_is_held(make_dialer, redis_key_prefix, redis_server, worker, late_check_off):
    config = dialer_env(
        worker_url=worker.url,
        key_prefix=redis_key_prefix,
        host=redis_server.host,
        port=redis_server.port,
        **late_check_off,
    )
    clients = build_clients(config)
    try:
        assert clients.dispatcher.restore is None
        assert clients.dispatcher.run([item(1)], Remaining(15)).counts[Metric.DIALS_SENT] == 1
    finally:
        clients.close()
