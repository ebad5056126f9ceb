"""`dialctl status` reads live calls as one snapshot: while calls start and end all the time, no
sample shows a campaign with more live calls than the fleet (a real Redis of its own, writers in threads)."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
import redis as redis_lib

from dialctl.targets import LocalTarget
from local_pipeline.services import ThrowawayRedis
from shared import live_calls

# The writes the admission script (a call starts: count_live) and the call-events script (it
# ends: record) make: a call's campaign and fleet entries change together, in one script.
START = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
"""
END = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
"""
CAMPAIGNS = ("spring-sale", "renewals", "win-back")
SAMPLES = 100


@pytest.fixture
def own_redis():
    """A Redis of this test's own: every sample SCANs the whole keyspace for campaigns, and in a
    shared Redis that is every other run's keys too (hundreds of thousands: a minute, not seconds)."""
    redis = ThrowawayRedis().start()
    try:
        yield redis.server
    finally:
        redis.destroy()


def test_the_fleet_never_has_fewer_live_calls_than_a_campaign(own_redis):
    prefix = f"snapshot-{uuid.uuid4().hex[:8]}"
    state = {"redis_url": own_redis.url, "redis_key_prefix": prefix, "sqs_endpoint": "http://127.0.0.1:1",
             "queue_url": "", "dlq_url": ""}  # fmt: skip
    target = LocalTarget(state)
    client = redis_lib.Redis.from_url(own_redis.url)
    start, end = client.register_script(START), client.register_script(END)
    fleet = live_calls.fleet_live_key(prefix)
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng, live = random.Random(seed), list[tuple[str, str]]()
        lease_end = int((time.time() + 3600) * 1_000_000)
        while not stop.is_set():
            # Mostly one campaign, so its count is close to the fleet's and a torn read shows.
            campaign = CAMPAIGNS[0] if rng.random() < 0.8 else rng.choice(CAMPAIGNS[1:])
            key = live_calls.campaign_live_key(prefix, campaign)
            if len(live) < 20 or rng.random() < 0.5:
                call_id = uuid.uuid4().hex
                start(keys=[key, fleet], args=[lease_end, call_id])
                live.append((key, call_id))
            else:
                key, call_id = live.pop(rng.randrange(len(live)))
                end(keys=[key, fleet], args=[call_id])
            time.sleep(0.0005)  # lets the sampling thread run (the GIL), the writers still interleave with it

    writers = [threading.Thread(target=writer, args=(seed,), daemon=True) for seed in range(3)]
    for thread in writers:
        thread.start()
    try:
        samples = [target.closed_loop() for _ in range(SAMPLES)]
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=10)
        client.delete(*client.keys("{" + prefix + "}*"))
    torn = [
        (s["fleet_live_calls"], c, f["live_calls"])
        for s in samples
        for c, f in s["campaigns"].items()
        if f["live_calls"] > s["fleet_live_calls"]
    ]
    assert torn == []
    assert sum(s["fleet_live_calls"] > 0 for s in samples) > SAMPLES // 2  # the sampling saw live calls
