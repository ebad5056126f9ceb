"""The call-events function's environment: Redis (the live sets and pace state the dialer reads),
the answer-rate rules and the live-call lease."""

from __future__ import annotations

from dataclasses import dataclass

from shared.env_contract import InvalidEnvironment, at_least, variable
from shared.redis_client import RedisEnv


@dataclass(frozen=True, kw_only=True)
class CallEventsEnv(RedisEnv):
    # A campaign's answer rate is the share of answered + machine over its last this many outcomes.
    answer_rate_window: int = variable("ANSWER_RATE_WINDOW", check=at_least(1))
    # Fewer outcomes than this in the window: no evidence, the pace never falls.
    answer_rate_min_samples: int = variable("ANSWER_RATE_MIN_SAMPLES", check=at_least(1))
    # At most one change of a campaign's pace factor per this many seconds (down or up).
    answer_rate_cool_down_seconds: float = variable("ANSWER_RATE_COOL_DOWN_SECONDS", check=at_least(0.1))
    # The dialer's live-call lease; a call event is remembered (counted once) far longer.
    max_call_seconds: int = variable("MAX_CALL_SECONDS", check=at_least(1))
    # The call ledger's records queue: an `outcome` record per event, acknowledged before the
    # event is reported done. None: no records (tests about something else).
    call_records_queue_url: str | None = variable("CALL_RECORDS_QUEUE_URL", default=None)

    def __post_init__(self) -> None:
        if self.answer_rate_min_samples > self.answer_rate_window:
            raise InvalidEnvironment("CallEventsEnv: ANSWER_RATE_MIN_SAMPLES must not exceed ANSWER_RATE_WINDOW")
