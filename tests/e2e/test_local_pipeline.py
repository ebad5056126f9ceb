"""End to end through the local pipe: the real handlers, PostgreSQL, Redis, SQS and an HTTP worker."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from support.arrivals import most_per_second

from local_pipeline.database import set_campaign_status
from local_pipeline.services import ThrowawayPostgres, ThrowawayRedis

from .conftest import tasks

pytestmark = pytest.mark.slow


def assert_accounted(summary):
    assert summary.drained, summary
    assert summary.lost == 0, summary
    assert summary.dialed_twice == 0, summary
    assert summary.peak_rolling_second <= most_per_second(summary.max_cps), summary


def test_every_task_ends_in_exactly_one_place(local_run):
    run = local_run(campaigns=[("active", "active"), ("stopped", "stopped")], max_cps=50)
    good = tasks(40)
    bad = [
        "not json",
        {"campaignId": "active", "contactId": "no-phone"},
        {"campaignId": "active", "contactId": "bad", "phoneNumber": "12345"},
        {"campaignId": "ghost", "contactId": "g", "phoneNumber": "+14155550000"},
        {"campaignId": "stopped", "contactId": "p", "phoneNumber": "+14155550001"},
    ]
    run.enqueue(good + bad + good[:5])  # five duplicates
    summary = run.run(timeout=90)
    assert_accounted(summary)
    assert summary.dialed == 40
    # Each of the five duplicates is suppressed; so is any message whose visibility timeout (2 s
    # here) ran out while its batch was still dialing, when it comes back already claimed.
    assert 5 <= summary.duplicates_suppressed <= 5 + summary.extra["redelivered"], summary
    assert summary.filtered_out == 2
    assert summary.dropped_by_reason == {"invalid_phone_number": 1, "unknown_campaign": 1, "campaign_inactive": 1}
    assert summary.in_dlq == 0
    accepted = Counter(c.body["contactId"] for c in run.worker.accepted())
    assert set(accepted) == {t["contactId"] for t in good} and set(accepted.values()) == {1}


def test_worker_errors_are_retried_until_success(local_run):
    run = local_run(max_cps=50)
    run.worker.script(500, 500, 503, 500)
    run.enqueue(tasks(10))
    summary = run.run(timeout=90)
    assert_accounted(summary)
    assert summary.dialed == 10 and summary.retried_items >= 4 and summary.in_dlq == 0


def test_a_task_the_worker_always_fails_ends_in_the_dlq(local_run):
    run = local_run(max_cps=50)
    run.worker.set_shares({500: 1.0})
    run.enqueue(tasks(2))
    summary = run.run(timeout=120)
    assert_accounted(summary)
    assert summary.dialed == 0 and summary.in_dlq == 2
    # maxReceiveCount (5) deliveries each, then the DLQ. A delivery whose call a loaded machine
    # would have sent late is deferred instead: not POSTed, and its copy starts a fresh count, so
    # each such deferral adds the at most 4 POSTs that came before it.
    late = summary.extra["deferrals_by_reason"].get("late", 0)
    assert 2 * 5 <= len(run.worker.calls) <= 2 * 5 + 4 * late, (len(run.worker.calls), late)


def test_overloaded_worker_slows_the_fleet_down(local_run):
    run = local_run(max_cps=40)
    run.worker.script(429, 429, 429)
    run.enqueue(tasks(30))
    summary = run.run(timeout=90)
    assert_accounted(summary)
    assert summary.dialed == 30
    assert summary.extra["worker_overloaded"] >= 1
    assert summary.extra["min_effective_cps"] < 40


def test_a_paused_campaign_resumed_mid_run_is_dialed_after_the_resume(local_run):
    run = local_run(campaigns=[("spring", "paused")], max_cps=50, cache_ttl_seconds=1)
    run.enqueue(tasks(5, "spring"))
    run_started = [time.monotonic()]

    def resume_then_enqueue(r):
        time.sleep(3)
        set_campaign_status(r.dsn, "spring", "active")
        time.sleep(1.5)  # past the enrichment's cache TTL
        r.enqueue(tasks(5, "spring", start=100))

    summary = run.run(timeout=90, during=resume_then_enqueue)
    assert_accounted(summary)
    dialed = {c.body["contactId"] for c in run.worker.accepted()}
    # Tasks read while the campaign was paused were kept (deferred), and dialed after the resume.
    assert dialed == {f"spring-{i}" for i in [*range(5), *range(100, 105)]}
    assert summary.dropped_by_reason == {}
    assert summary.extra["deferrals_by_reason"].get("paused", 0) >= 5, summary
    first_after = min(c.at_monotonic for c in run.worker.accepted())
    assert first_after - run_started[0] >= 3, "nothing dialed while paused"


def test_redis_restarted_mid_run(local_run):
    redis = ThrowawayRedis().start()
    try:
        run = local_run(redis=redis.server, max_cps=30)
        run.enqueue(tasks(120))

        def restart(r):
            time.sleep(1.5)
            redis.stop()
            time.sleep(2)
            redis.start()

        summary = run.run(timeout=120, during=restart)
        assert_accounted(summary)
        assert summary.dialed == 120 and summary.extra["redis_unavailable_batches"] >= 1
    finally:
        redis.destroy()


def test_postgres_unavailable_for_a_while(local_run):
    pg = ThrowawayPostgres().start()
    try:
        run = local_run(postgres=pg.server, dbname="postgres", max_cps=50, cache_ttl_seconds=0)
        pg.stop()
        run.enqueue(tasks(20))

        def come_back(r):
            time.sleep(4)
            pg.start()

        summary = run.run(timeout=120, during=come_back)
        assert_accounted(summary)
        assert summary.dialed == 20 and summary.in_dlq == 0
        assert summary.extra.get("enrichment_failed", 0) >= 1
    finally:
        pg.destroy()
