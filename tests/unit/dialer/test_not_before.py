"""A retry's notBefore, honoured as calling windows are: deferred until then without a claim or
a slot, in hops of at most 900 s; once it has come every other gate is judged as for any task."""

from __future__ import annotations

from datetime import UTC, datetime

from support.items import item

from shared.dial_task import parse_task
from shared.drops import DropReason

from .test_dispatcher import compliant_dispatcher, remaining

ELEVEN_LA = datetime(2026, 1, 15, 19, 0, tzinfo=UTC)


def test_a_task_before_its_not_before_waits_in_hops_of_at_most_900_s():
    dispatcher, pacer, worker, deferrer = compliant_dispatcher(ELEVEN_LA)
    report = dispatcher.run([item(1, notBefore="2026-01-15T21:00:00+00:00")], remaining())
    assert worker.commands == [] and pacer.reserved == []
    assert deferrer.deferred == [(item(1)["messageId"], 900_000)]
    assert report.deferrals == {"not_before": 1}


def test_the_last_hop_ends_at_the_not_before():
    dispatcher, _, _, deferrer = compliant_dispatcher(ELEVEN_LA)
    dispatcher.run([item(1, notBefore="2026-01-15T19:00:30Z")], remaining())
    assert deferrer.deferred == [(item(1)["messageId"], 30_001)]


def test_once_its_not_before_has_come_the_window_decides():
    # notBefore passed, but 06:00 in Los Angeles: it waits for the window now.
    dispatcher, _, worker, deferrer = compliant_dispatcher(datetime(2026, 1, 15, 14, 0, tzinfo=UTC))
    report = dispatcher.run([item(1, notBefore="2026-01-15T13:00:00Z")], remaining())
    assert report.deferrals == {"outside_window": 1} and worker.commands == []
    dispatcher, _, worker, _ = compliant_dispatcher(ELEVEN_LA)
    assert dispatcher.run([item(1, notBefore="2026-01-15T18:00:00Z")], remaining()).counts["DialsSent"] == 1


def test_an_expired_retry_is_dropped_whatever_its_not_before():
    dispatcher, _, worker, _ = compliant_dispatcher(ELEVEN_LA)
    raw = item(1, notBefore="2026-01-16T00:00:00Z", expiresAt="2026-01-15T18:00:00Z")
    assert [d.reason for d in dispatcher.run([raw], remaining()).drops] == [DropReason.EXPIRED]


def test_not_before_must_carry_an_offset():
    base = {"campaignId": "c", "contactId": "k", "phoneNumber": "+14155550100"}
    assert parse_task({**base, "notBefore": "2026-01-15T18:00:00"}) is DropReason.INVALID_NOT_BEFORE
    assert parse_task({**base, "notBefore": 5}) is DropReason.INVALID_NOT_BEFORE
    parsed = parse_task({**base, "notBefore": "2026-01-15T18:00:00-05:00"})
    assert not isinstance(parsed, DropReason) and parsed.fields()["notBefore"] == "2026-01-15T18:00:00-05:00"
