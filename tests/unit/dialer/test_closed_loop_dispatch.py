"""The dialer's side of the closed loop with in-memory fakes: what it asks the script, how it
defers for live calls and pauses, and which calls it tells `finish` are no longer live."""

from __future__ import annotations

import pytest
from support.env import dialer_env
from support.fakes import FakeClock, FakeDeferrer, FakePacer, FakeWorker
from support.items import enriched_task, item

from dialer_worker.admission import Admission, AdmissionRequest, Decision
from dialer_worker.dispatch import LIVE_CALLS_DEFER_MS, PAUSED_DEFER_MS, Dispatcher


@pytest.fixture
def parts():
    clock = FakeClock()
    pacer, worker, deferrer = FakePacer(), FakeWorker(), FakeDeferrer()
    dispatcher = Dispatcher(
        config=dialer_env(),
        pacer=pacer,
        worker=worker,
        deferrer=deferrer,
        clock=clock,
        sleep=clock.sleep,
    )
    return dispatcher, pacer, worker, deferrer


def remaining():
    return 15_000


def test_the_campaigns_caps_go_to_the_script_with_each_task(parts):
    dispatcher, pacer, _, _ = parts
    dispatcher.run(
        [item(1, config={"maxConcurrentCalls": 4, "minAnswerRate": 0.3}), item(2, campaign="c-2")], remaining
    )
    [(first, second)] = pacer.reserved
    assert first == AdmissionRequest(first.call_id, "c-1", campaign_max_live=4, min_answer_rate=0.3)
    assert second == AdmissionRequest(second.call_id, "c-2")


def test_a_full_campaign_defers_a_few_seconds_never_fails(parts):
    dispatcher, pacer, worker, deferrer = parts
    pacer.scripted = [[Admission(Decision.LIVE_CALLS, 0), Admission(Decision.DIAL, 0)]]
    report = dispatcher.run([item(1), item(2)], remaining)
    assert report.deferrals == {"live_calls": 1} and report.failures == []
    assert deferrer.deferred == [(item(1)["messageId"], LIVE_CALLS_DEFER_MS)]
    assert LIVE_CALLS_DEFER_MS <= 30_000
    assert len(worker.commands) == 1


def test_a_paused_campaigns_task_never_reaches_the_script(parts):
    dispatcher, pacer, worker, deferrer = parts
    report = dispatcher.run([item(1, status="paused")], remaining)
    assert pacer.reserved == [] and worker.commands == []
    assert report.deferrals == {"paused": 1}
    assert deferrer.deferred == [(item(1)["messageId"], PAUSED_DEFER_MS)]


@pytest.mark.parametrize(
    ("status", "live"), [(202, False), (409, False), (400, True), (429, True), (503, True), (500, True)]
)
def test_finish_ends_the_live_calls_that_did_not_go_out(parts, status, live):
    dispatcher, pacer, worker, _ = parts
    worker.statuses = [status]
    dispatcher.run([item(1)], remaining)
    ended = pacer.finished[0]["ended"]
    assert ended == ({enriched_task(1).call_id: "c-1"} if live else {})


def test_an_unanswered_call_stays_live_until_its_lease(parts):
    dispatcher, pacer, worker, _ = parts
    worker.statuses = [None]  # sent, no answer: the worker may have placed it
    dispatcher.run([item(1)], remaining)
    assert pacer.finished[0]["ended"] == {}


def test_finish_keeps_live_what_the_worker_carries_and_drops_the_entry_of_a_409(parts):
    dispatcher, pacer, worker, _ = parts
    worker.statuses = [202, 409, None, 503]
    pacer.scripted = [[Admission(Decision.DIAL, 0, slot_us=n, lease_end_us=100 + n) for n in range(4)]]
    dispatcher.run([item(n) for n in range(4)], remaining)
    [finished] = pacer.finished
    ids = [enriched_task(n).call_id for n in range(4)]
    # 202, and no answer (the worker may have it): live; a 409: admission's own entry goes.
    assert finished["carried"] == {ids[0]: ("c-1", 0), ids[2]: ("c-1", 2)}
    assert finished["repeated"] == {ids[1]: ("c-1", 101)}
    assert finished["ended"] == {ids[3]: "c-1"} and finished["released"] == [ids[3]]
