from __future__ import annotations

import boto3
import pytest
from support.env import dialer_env
from support.items import item

from dialer_worker.admission import RedisPacer
from dialer_worker.deferral import Deferrer
from dialer_worker.dispatch import Dispatcher, RedisHealth
from dialer_worker.env import LATE_CHECK_OFF
from dialer_worker.worker_client import WorkerClient
from local_pipeline.worker_standin import WorkerStandIn
from shared.redis_client import redis_client

__all__ = ["item", "Remaining"]


@pytest.fixture
def late_check_off():
    """The late check's switch-off (`dialer_worker.env.LATE_CHECK_OFF`) for a test about something
    else: the dialers its fixtures build (make_dispatcher, make_dialer) have it off."""
    return LATE_CHECK_OFF


def late_check_fields(request) -> dict:
    return dict(LATE_CHECK_OFF) if "late_check_off" in request.fixturenames else {}


@pytest.fixture
def sqs(sqs_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    return client


@pytest.fixture
def queue_url(sqs, redis_key_prefix):
    return sqs.create_queue(QueueName=f"dial-tasks-{redis_key_prefix}")["QueueUrl"]


@pytest.fixture
def worker():
    standin = WorkerStandIn().start()
    yield standin
    standin.stop()


class Remaining:
    """A context's remaining time, counting down for real from `seconds`."""

    def __init__(self, seconds):
        import time

        self._deadline = time.monotonic() + seconds
        self._time = time

    def __call__(self):
        return int((self._deadline - self._time.monotonic()) * 1000)


@pytest.fixture
def make_dispatcher(request, redis_server, redis_key_prefix, worker, sqs, queue_url):
    created = []

    def make(
        max_cps=50.0,
        reserved=5,
        redis_port=None,
        queue=queue_url,
        quarantine_s=None,
        recovery_hold_s=None,
        recipient_limit=0,
        max_concurrent_calls=0,
        max_call_seconds=900,
    ):
        config = dialer_env(
            max_cps=max_cps,
            worker_url=worker.url,
            reserved_concurrency=reserved,
            redis_quarantine_seconds=15 if quarantine_s is None else quarantine_s,
            key_prefix=redis_key_prefix,
            defer_queue_url=queue,
            host=redis_server.host,
            port=redis_port or redis_server.port,
            recipient_daily_limit=recipient_limit,
            recipient_hash_key="test-recipient-key" if recipient_limit else None,
            max_concurrent_calls=max_concurrent_calls,
            max_call_seconds=max_call_seconds,
            **late_check_fields(request),
        )
        client = redis_client(config)
        dispatcher = Dispatcher(
            config=config,
            pacer=RedisPacer(
                client,
                prefix=redis_key_prefix,
                claim_ttl_seconds=3600,
                recipient_daily_limit=recipient_limit,
                max_concurrent_calls=max_concurrent_calls,
                max_call_seconds=max_call_seconds,
            ),
            recipient_key=b"test-recipient-key" if recipient_limit else None,
            worker=WorkerClient(worker.url),
            deferrer=Deferrer(queue, lambda: sqs),
            health=None
            if recovery_hold_s is None
            else RedisHealth(quarantine_s=config.redis_quarantine_seconds, recovery_hold_s=recovery_hold_s),
        )
        dispatcher.redis = client
        created.append(dispatcher)
        return dispatcher

    yield make
    for d in created:
        d.worker.close()
        d.redis.close()
