"""The recipient limit on real Redis: at most N calls to one number in 24 h across campaigns and
concurrent dialers, never counted for a call that did not go out, keyed by a hash of the number."""

from __future__ import annotations

from support.concurrency import in_threads

from .conftest import Remaining, item

NUMBER = "+14155550123"


def same_number(n, campaign):
    return item(n, campaign=campaign, phoneNumber=NUMBER)


def test_concurrent_dialers_admit_at_most_the_limit_for_one_number(make_dispatcher, worker, late_check_off):
    dispatchers = [make_dispatcher(max_cps=50, recipient_limit=3) for _ in range(4)]

    def invoke(d, k):
        return d.run([same_number(k * 10 + i, f"campaign-{k}") for i in range(5)], Remaining(15))

    reports = in_threads(invoke, [(d, k) for k, d in enumerate(dispatchers)])
    assert len(worker.accepted()) == 3
    dropped = [str(d.reason) for r in reports for d in r.drops]
    assert dropped == ["recipient_limit"] * 17
    assert sum(r.counts["DialsSent"] for r in reports) == 3


def test_a_call_that_did_not_go_out_does_not_count(make_dispatcher, worker, late_check_off):
    d = make_dispatcher(recipient_limit=1)
    worker.script(503)
    first = d.run([same_number(1, "a")], Remaining(15))
    assert first.failures  # overloaded: retried later, its claim and its count released
    second = d.run([same_number(2, "b")], Remaining(15))
    assert second.counts["DialsSent"] == 1 and second.drops == []
    third = d.run([same_number(3, "c")], Remaining(15))
    assert [str(x.reason) for x in third.drops] == ["recipient_limit"]


def test_redis_never_holds_the_number(make_dispatcher, redis_key_prefix, late_check_off):
    d = make_dispatcher(recipient_limit=2)
    d.run([same_number(1, "a")], Remaining(15))
    keys = [k.decode() for k in d.redis.scan_iter(match=f"{{{redis_key_prefix}}}:*", count=10_000)]
    members = [m.decode() for k in keys if ":recipient:" in k for m in d.redis.zrange(k, 0, -1)]
    assert any(":recipient:" in k for k in keys) and members
    assert not any("4155550123" in text for text in keys + members)
