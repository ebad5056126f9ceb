"""The Redis keys the closed loop shares between the dialer (admission) and the call-events
handler: live calls, outcome windows and pace factors. One place for their names, so both sides
always read and write the same keys, all under the hash tag `{<prefix>}` like the pacing keys."""

from __future__ import annotations

# The answer-rate rules (docs/design.md, "Call events"): these outcomes are a seized line.
ANSWERED_OUTCOMES = ("answered", "machine")
OUTCOMES = ("answered", "machine", "no_answer", "busy", "failed", "rejected")
# A campaign's pace factor never goes below this share of its rate.
PACE_FLOOR = 0.1
PACE_DECREASE = 0.5
PACE_INCREASE = 0.1
# How long a campaign's pace state and outcome window outlive its last call event or dial.
PACE_STATE_TTL_S = 86_400


def tag(prefix: str) -> str:
    return "{" + prefix + "}"


def fleet_live_key(prefix: str) -> str:
    """Sorted set of the fleet's live calls: member callId, score its lease end (µs)."""
    return f"{tag(prefix)}:live"


def campaign_live_key(prefix: str, campaign_id: str) -> str:
    """Sorted set of one campaign's live calls, as the fleet's."""
    return f"{tag(prefix)}:live:campaign:{campaign_id}"


def pace_key(prefix: str, campaign_id: str) -> str:
    """Hash: `factor` (absent = 1), `changed_at` (µs, the last change), `min_rate` (the campaign's
    minAnswerRate as the dialer last saw it; absent = the campaign never slows)."""
    return f"{tag(prefix)}:pace:campaign:{campaign_id}"


def outcomes_key(prefix: str, campaign_id: str) -> str:
    """List of the campaign's last outcomes, newest first, at most answer_rate_window long."""
    return f"{tag(prefix)}:outcomes:campaign:{campaign_id}"


def seen_key(prefix: str, call_id: str) -> str:
    """Set once per callId by the call-events handler: a repeated event counts once."""
    return f"{tag(prefix)}:event:{call_id}"
