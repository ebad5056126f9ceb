"""What the demo's summary explains: the capped share and the rate it allows, the rate while calls
were due, and one colour per campaign."""

from __future__ import annotations

import json

import pytest

from local_pipeline import demo_report
from local_pipeline.demo import CALL_SECONDS, CAMPAIGNS
from local_pipeline.demo_report import (
    achieved_while_due,
    campaign_ceiling,
    campaign_colours,
    campaign_rates,
    caps,
    idle_stretches,
    json_document,
)

CONFIGS = {name: config for name, _, config in CAMPAIGNS}
MEAN_CALL_S = sum(CALL_SECONDS) / 2
# The demo's mix of 200 tasks: every fifth renewals, two in five low-answer, the rest spring-sale.
DIALED = {"spring-sale": 80, "renewals": 40, "low-answer": 80}


def test_a_campaign_is_bounded_by_the_least_of_its_caps_and_max_cps():
    assert campaign_ceiling("a", 10, {}, 20, 2.0).cps == 20
    assert campaign_ceiling("a", 10, {"maxCps": 5}, 20, 2.0).bound == "maxCps 5"
    assert campaign_ceiling("a", 10, {"maxCps": 50}, 20, 2.0).bound == "MAX_CPS"
    # Six live calls of two seconds each: three calls a second at most (Little's law).
    live = campaign_ceiling("a", 10, {"maxCps": 5, "maxConcurrentCalls": 6}, 20, 2.0)
    assert (live.cps, live.bound) == (3.0, "maxConcurrentCalls 6 / 2 s calls")


def test_the_demo_mix_at_max_cps_20_is_held_by_its_capped_campaigns():
    report = caps(DIALED, CONFIGS, 20, MEAN_CALL_S)
    assert [c.campaign for c in report.capped] == ["low-answer", "renewals"]
    assert report.capped_share == pytest.approx(0.6)
    assert report.capped_cps == 5 + 3
    # low-answer's 80 tasks at 5 CPS take 16 s, longer than the 200 at MAX_CPS (10 s).
    assert (report.slowest, report.shortest_s, report.reachable_cps) == ("low-answer", 16.0, 12.5)
    assert "60% of tasks (120 of 200) are in 2 capped campaigns" in report.explain()
    assert "low-answer's 80 tasks at 5 CPS take 16.0 s" in report.explain_reachable()


def test_a_higher_max_cps_shows_what_it_does_and_does_not_change():
    low, high = caps(DIALED, CONFIGS, 20, MEAN_CALL_S), caps(DIALED, CONFIGS, 50, MEAN_CALL_S)
    # At 50, spring-sale's maxConcurrentCalls 50 over 2 s calls caps it at 25 CPS too.
    assert [c.campaign for c in high.capped] == ["low-answer", "renewals", "spring-sale"]
    assert high.capped_share == 1.0
    assert high.reachable_cps == low.reachable_cps == 12.5
    # A campaign with one task is named, not explained.
    with_single = caps({**DIALED, "paused-promo": 1}, CONFIGS, 50, MEAN_CALL_S).explain()
    assert with_single.endswith("spring-sale 25 CPS (maxConcurrentCalls 50 / 2 s calls), paused-promo (one task)")


def test_without_capped_campaigns_max_cps_sets_the_pace():
    report = caps({"spring-sale": 100}, CONFIGS, 20, MEAN_CALL_S)
    assert (report.capped, report.capped_share, report.slowest, report.reachable_cps) == ((), 0.0, "MAX_CPS", 20.0)
    assert report.explain() == "no campaign is capped below MAX_CPS 20"
    assert caps({}, CONFIGS, 20, MEAN_CALL_S).tasks == 0


def test_the_caps_as_dict_are_json_with_their_explanation():
    document = json.loads(json.dumps(caps(DIALED, CONFIGS, 20, MEAN_CALL_S).as_dict({"renewals": 1.4})))
    assert document["capped_share"] == 0.6
    assert document["explained"].startswith("60% of tasks")
    assert "renewals 3 CPS (maxConcurrentCalls 6 / 2 s calls; achieved 1.4)" in document["explained"]


def test_a_campaign_rate_runs_from_its_first_call_to_its_last():
    rates = campaign_rates({"a": [10.0, 10.5, 11.0, 12.0], "b": [3.0], "c": [4.0, 4.0]})
    assert rates == {"a": 1.5}  # three intervals in 2 s; one call, or no time between, has none


def test_achieved_leaves_out_a_stretch_in_which_nothing_was_due():
    # Ten calls a second for two seconds, then one call 30 s later (a calling window opened): the
    # queue was idle from 5 s to 29 s, then busy (the task back in flight) until its call.
    calls = [i / 10 for i in range(21)] + [32.0]
    queue = [(t, 5 <= t < 29) for t in range(0, 33)]
    achieved = achieved_while_due(calls, queue)
    assert achieved.idle == ((5.0, 29.0),)
    assert (achieved.span_s, achieved.due_s) == (32.0, 8.0)
    assert achieved.cps == pytest.approx(21 / 8, abs=0.01)  # 21 intervals in the 8 s due


def test_idle_stretches_are_the_long_runs_of_an_empty_queue():
    queue = [(0.0, False), (1.0, True), (2.0, True), (3.0, False), (4.0, True), (10.0, True), (11.0, False)]
    assert idle_stretches(queue) == [(4.0, 11.0)]  # 1-3 s is shorter than IDLE_GAP_S
    assert idle_stretches([(0.0, True), (9.0, True)]) == [(0.0, 9.0)]  # idle to the last sample
    assert idle_stretches([]) == []


def test_a_stretch_stays_due_when_a_call_arrived_in_it_or_it_was_short():
    queue = [(t, True) for t in range(3, 20)]
    assert achieved_while_due([0.0, 1.0, 10.0, 20.0], queue).due_s == 20.0  # the call at 10 s
    assert achieved_while_due([0.0, 1.0, 4.0], [(1.5, True), (3.5, True)]).due_s == 4.0
    # Only the part between the first and the last call counts: not the wait before the first.
    assert achieved_while_due([10.0, 11.0], [(0.0, True), (10.0, False)]).idle == ()


def test_achieved_with_fewer_than_two_calls_is_zero():
    assert achieved_while_due([], []).cps == 0.0
    assert achieved_while_due([5.0], []).cps == 0.0


def test_json_document_leaves_the_series_out_unless_asked():
    summary = {"dialed": 3, "extra": {"caps": {}, **{name: [1, 2, 3] for name in demo_report.SERIES}}}
    assert json_document(summary) == {"dialed": 3, "extra": {"caps": {}}}
    assert json_document(summary, series=True) == summary
    assert set(summary["extra"]) == {"caps", *demo_report.SERIES}  # the summary itself is left as it was


def test_one_colour_per_campaign_whatever_the_order():
    names = ["spring-sale", "renewals", "low-answer", "paused-promo", "opens-soon"]
    colours = campaign_colours(names)
    assert colours == campaign_colours(reversed(names)) == campaign_colours([*names, "renewals"])
    assert len(set(colours.values())) == len(names)
    assert demo_report.LIMIT_COLOUR not in colours.values()  # red is the limits' colour


def test_a_campaign_waiting_on_its_live_calls_is_never_idle():
    from dialer_worker.dispatch import LIVE_CALLS_DEFER_MS

    # Its tasks wait in the queue, delayed, this long at a time; idle needs a longer stretch.
    assert demo_report.IDLE_GAP_S > LIVE_CALLS_DEFER_MS / 1000
