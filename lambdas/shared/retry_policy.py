"""A campaign's retry policy (its config's `retry`) and the plan for one ended call. Pure.

    "retry": {"busy": {"afterSeconds": 600, "maxAttempts": 3},
              "no_answer": {"afterSeconds": 3600, "maxAttempts": 2},
              "machine": {...}, "failed": {...},
              "maxAttempts": 5}

Both caps count calls to the contact within the campaign, never retries:
- an outcome's `maxAttempts`: at most that many of the contact's attempts end with it; the call
  that reaches it is not retried (busy 3: retried after the first and second busy, not the third);
- the top `maxAttempts` (optional): at most that many attempts in all, and attempts count from 0
  as the task's `attempts` does, so the last one allowed has `attempts` = maxAttempts - 1.
`answered` and `rejected` are never retried, so a policy that names them is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

RETRYABLE_OUTCOMES = ("busy", "no_answer", "machine", "failed")
FINAL_OUTCOMES = ("answered", "rejected")
TOP_CAP = "maxAttempts"


class RetryConfigError(ValueError):
    """A malformed `retry`: the caller treats the campaign as misconfigured."""


@dataclass(frozen=True)
class OutcomeRule:
    after_seconds: int
    max_attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    rules: Mapping[str, OutcomeRule]
    max_attempts: int | None = None


@dataclass(frozen=True)
class RetryPlan:
    """The retry's `attempts` and the time before which the dialer must not dial it."""

    attempt: int
    not_before: datetime


def retry_policy_of(config: Mapping[str, Any]) -> RetryPolicy | None:
    """The policy in a campaign's config; None when it has none. Raises RetryConfigError."""
    if "retry" not in config or config["retry"] is None:
        return None
    return parse_retry(config["retry"])


def parse_retry(value: Any) -> RetryPolicy:
    if not isinstance(value, dict):
        raise RetryConfigError("retry: must be an object")
    unknown = sorted(set(value) - {*RETRYABLE_OUTCOMES, TOP_CAP})
    if unknown:
        raise RetryConfigError(
            f"retry: unknown key(s) {unknown}; the outcomes that can be retried are {list(RETRYABLE_OUTCOMES)}"
        )
    top = value.get(TOP_CAP)
    if top is not None and not _int_at_least(top, 1):
        raise RetryConfigError("retry.maxAttempts: must be an integer >= 1")
    rules = {}
    for outcome in RETRYABLE_OUTCOMES:
        if outcome not in value:
            continue
        rule = value[outcome]
        if not isinstance(rule, dict) or set(rule) != {"afterSeconds", "maxAttempts"}:
            raise RetryConfigError(f"retry.{outcome}: must be {{'afterSeconds': int, 'maxAttempts': int}}")
        if not _int_at_least(rule["afterSeconds"], 0):
            raise RetryConfigError(f"retry.{outcome}.afterSeconds: must be an integer >= 0")
        if not _int_at_least(rule["maxAttempts"], 1):
            raise RetryConfigError(f"retry.{outcome}.maxAttempts: must be an integer >= 1")
        rules[outcome] = OutcomeRule(rule["afterSeconds"], rule["maxAttempts"])
    return RetryPolicy(rules, top)


def plan_retry(
    policy: RetryPolicy, outcome: str, attempt: int, outcome_count: int, ended_at: datetime
) -> RetryPlan | None:
    """The retry of attempt `attempt` that ended with `outcome` at `ended_at`, or None.

    `outcome_count`: the contact's attempts in this campaign that ended with `outcome`, this one
    included."""
    rule = policy.rules.get(outcome)
    if outcome in FINAL_OUTCOMES or rule is None:
        return None
    if outcome_count >= rule.max_attempts:
        return None
    if policy.max_attempts is not None and attempt + 1 >= policy.max_attempts:
        return None
    return RetryPlan(attempt + 1, (ended_at + timedelta(seconds=rule.after_seconds)).astimezone(UTC))


def retry_body(original: Mapping[str, Any], plan: RetryPlan) -> dict[str, Any]:
    """The task again, as the scheduler sent it, with the retry's attempts and notBefore."""
    return {**original, "attempts": plan.attempt, "notBefore": plan.not_before.isoformat()}


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low
