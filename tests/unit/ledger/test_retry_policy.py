"""The retry policy: what a campaign's `retry` may say, and when an ended call is retried."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.retry_policy import (
    OutcomeRule,
    RetryConfigError,
    RetryPlan,
    parse_retry,
    plan_retry,
    retry_body,
    retry_policy_of,
)

POLICY = {
    "busy": {"afterSeconds": 600, "maxAttempts": 3},
    "no_answer": {"afterSeconds": 3600, "maxAttempts": 2},
    "maxAttempts": 5,
}
ENDED = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=2)))


def test_a_policy_parses_into_its_rules_and_top_cap():
    policy = parse_retry(POLICY)
    assert policy.rules == {"busy": OutcomeRule(600, 3), "no_answer": OutcomeRule(3600, 2)}
    assert policy.max_attempts == 5


def test_a_config_without_retry_has_no_policy():
    assert retry_policy_of({"audioFileUrl": "s3://a"}) is None
    assert retry_policy_of({"retry": None}) is None


@pytest.mark.parametrize(
    "value, message",
    [
        ([], "must be an object"),
        ({"answered": {"afterSeconds": 1, "maxAttempts": 1}}, "unknown key"),
        ({"noAnswer": {"afterSeconds": 1, "maxAttempts": 1}}, "unknown key"),
        ({"maxAttempts": 0}, "retry.maxAttempts"),
        ({"maxAttempts": True}, "retry.maxAttempts"),
        ({"busy": {"afterSeconds": 1}}, "retry.busy"),
        ({"busy": {"afterSeconds": 1, "maxAttempts": 2, "jitter": 3}}, "retry.busy"),
        ({"busy": {"afterSeconds": -1, "maxAttempts": 2}}, "retry.busy.afterSeconds"),
        ({"busy": {"afterSeconds": 1.5, "maxAttempts": 2}}, "retry.busy.afterSeconds"),
        ({"busy": {"afterSeconds": 1, "maxAttempts": 0}}, "retry.busy.maxAttempts"),
        ({"failed": {"afterSeconds": "60", "maxAttempts": 2}}, "retry.failed.afterSeconds"),
    ],
)
def test_a_malformed_policy_is_an_error_that_says_what_is_wrong(value, message):
    with pytest.raises(RetryConfigError, match=message):
        retry_policy_of({"retry": value})


def test_the_retry_comes_after_seconds_past_the_end_with_an_offset():
    plan = plan_retry(parse_retry(POLICY), "busy", attempt=0, outcome_count=1, ended_at=ENDED)
    assert plan == RetryPlan(1, ENDED + timedelta(seconds=600))
    assert plan is not None and plan.not_before.isoformat() == "2026-03-01T18:10:00+00:00"


@pytest.mark.parametrize("outcome", ["answered", "rejected", "machine", "failed"])
def test_no_retry_after_a_final_outcome_or_one_the_policy_does_not_name(outcome):
    assert plan_retry(parse_retry(POLICY), outcome, attempt=0, outcome_count=1, ended_at=ENDED) is None


def test_an_outcomes_cap_counts_the_contacts_attempts_that_ended_with_it():
    policy = parse_retry(POLICY)
    # busy 3: retried after the first and second busy; the third is the last.
    assert plan_retry(policy, "busy", attempt=1, outcome_count=2, ended_at=ENDED) is not None
    assert plan_retry(policy, "busy", attempt=2, outcome_count=3, ended_at=ENDED) is None
    # Two busy calls do not use up no_answer's budget: each outcome counts its own.
    assert plan_retry(policy, "no_answer", attempt=2, outcome_count=1, ended_at=ENDED) is not None


def test_the_top_cap_counts_attempts_from_zero():
    policy = parse_retry({"busy": {"afterSeconds": 0, "maxAttempts": 10}, "maxAttempts": 3})
    assert plan_retry(policy, "busy", attempt=1, outcome_count=2, ended_at=ENDED) == RetryPlan(2, ENDED)
    # attempts 0, 1, 2 are three attempts: the third is the last.
    assert plan_retry(policy, "busy", attempt=2, outcome_count=3, ended_at=ENDED) is None


def test_the_retry_body_is_the_original_with_attempts_and_not_before():
    original = {"campaignId": "c", "contactId": "k", "attempts": 0, "metadata": {"x": 1}, "unknownField": True}
    body = retry_body(original, RetryPlan(1, ENDED))
    assert body == {**original, "attempts": 1, "notBefore": "2026-03-01T20:00:00+02:00"}
    assert original["attempts"] == 0, "the original is not changed"
