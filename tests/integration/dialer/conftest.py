from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import redis

from dialer_worker.config import DialerConfig
from dialer_worker.deferral import Deferrer
from dialer_worker.dispatch import Dispatcher, RedisHealth
from dialer_worker.pacing import RedisPacer
from dialer_worker.worker_client import WorkerClient
from local_pipeline.worker_standin import WorkerStandIn

CONFIG = {"audioFileUrl": "s3://audio/hello.wav", "ivrFlow": {"start": "menu"}, "maxConcurrentCalls": 10}


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


def item(n, campaign="c-1", max_cps=None, attempts=0, **overrides):
    config = dict(CONFIG, **({"maxCps": max_cps} if max_cps else {}))
    base = {
        "messageId": f"m-{campaign}-{n}-{attempts}",
        "campaignId": campaign,
        "contactId": f"k-{n}",
        "phoneNumber": f"+1415555{n:04d}",
        "attempts": attempts,
        "metadata": {},
        "campaign": {"id": campaign, "name": campaign, "config": config},
        "enrichedAt": "2026-11-28T00:00:00.000Z",
    }
    base.update(overrides)
    return base


class Remaining:
    """A context's remaining time, counting down for real from `seconds`."""

    def __init__(self, seconds):
        import time

        self._deadline = time.monotonic() + seconds
        self._time = time

    def __call__(self):
        return int((self._deadline - self._time.monotonic()) * 1000)


@pytest.fixture
def make_dispatcher(redis_server, redis_key_prefix, worker, sqs, queue_url):
    created = []

    def make(max_cps=50.0, reserved=5, redis_port=None, queue=queue_url, quarantine_s=None, recovery_hold_s=None):
        given = {"quarantine_s": quarantine_s, "recovery_hold_s": recovery_hold_s}
        timings = {name: value for name, value in given.items() if value is not None}
        config = DialerConfig(
            max_cps=max_cps,
            worker_url=worker.url,
            reserved_concurrency=reserved,
            claim_ttl_seconds=3600,
            key_prefix=redis_key_prefix,
            defer_queue_url=queue,
            redis_host=redis_server.host,
            redis_port=redis_port or redis_server.port,
            redis_tls=False,
            redis_auth_secret_arn=None,
        )
        from dialer_worker.handler import _redis_client

        client = _redis_client(config)
        dispatcher = Dispatcher(
            config=config,
            pacer=RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=3600),
            worker=WorkerClient(worker.url),
            deferrer=Deferrer(queue, lambda: sqs),
            executor=ThreadPoolExecutor(max_workers=10),
            health=RedisHealth(**timings) if timings else None,
        )
        dispatcher.redis = client
        created.append(dispatcher)
        return dispatcher

    yield make
    for d in created:
        d.executor.shutdown(wait=False)
        d.redis.close()
