"""Redis that comes back empty (a failover that lost writes) has lost the dial claims: the first
batch after it says so, once, so an alarm can tell on-call that only the worker's Idempotency-Key
now stands between a redelivery and a second call."""

from __future__ import annotations

from .conftest import Remaining, item


def test_a_redis_that_lost_its_keys_is_reported_once(make_dispatcher, redis_key_prefix):
    d = make_dispatcher()
    first = d.run([item(1)], Remaining(15))
    assert not first.claims_reset
    # The failover: every key of this pipeline is gone, claims included.
    for key in list(d.redis.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000)):
        d.redis.delete(key)
    after = d.run([item(2)], Remaining(15))
    assert after.claims_reset
    assert not d.run([item(3)], Remaining(15)).claims_reset


def test_a_new_container_on_a_fresh_redis_is_not_an_alarm(make_dispatcher):
    assert not make_dispatcher().run([item(1)], Remaining(15)).claims_reset
