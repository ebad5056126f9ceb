"""A series per campaign is a custom metric each (docs/runbook.md, "What the metrics cost"): the
dialer emits live calls per campaign only for campaigns with a cap, call events the answer rate
and the pace only for campaigns slowed now; every campaign stays in the log lines."""

from __future__ import annotations

from support.emf import emitted, metric_value

from call_events import telemetry as call_events_telemetry
from call_events.core import CallEventsReport
from call_events.loop import CampaignState, LoopResult
from dialer_worker.dispatch import BatchReport
from dialer_worker.telemetry import DialerTelemetry


def per_campaign(lines: list[dict], metric: str) -> dict[str, float]:
    return {line["campaignId"]: metric_value(line[metric]) for line in lines if metric in line and "campaignId" in line}


def test_the_dialer_emits_live_calls_only_for_capped_campaigns(capsys):
    report = BatchReport(campaign_live={"capped": 4, "open": 9}, capped_campaigns={"capped"})
    DialerTelemetry(namespace="test").observe(report)
    assert per_campaign(emitted(capsys.readouterr().out), "LiveCalls") == {"capped": 4}


def test_call_events_emit_answer_rate_and_pace_only_for_slowed_campaigns(capsys, caplog):
    result = LoopResult(
        campaigns={
            "slowed": CampaignState(samples=20, answered=2, pace_factor=0.5, live_calls=3),
            "healthy": CampaignState(samples=20, answered=15, pace_factor=1.0, live_calls=7),
        }
    )
    call_events_telemetry.observe(CallEventsReport(records=2, result=result), namespace="test")
    lines = emitted(capsys.readouterr().out)
    assert per_campaign(lines, "PaceFactor") == {"slowed": 0.5}
    assert per_campaign(lines, "AnswerRate") == {"slowed": 0.1}
    assert per_campaign(lines, "LiveCalls") == {}
    # Every campaign, metric or not, is in the batch's log line.
    [logged] = [r for r in caplog.records if r.getMessage() == "call events recorded"]
    assert set(logged.__dict__["campaigns"]) == {"slowed", "healthy"}
