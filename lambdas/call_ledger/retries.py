"""The retries that follow from calls just written: exactly one per ended call, however often its
records arrive.

Looked at after every write, for every callId the write touched (an attempt that arrives after
its outcome completes the call just as well): a call is retried when it was dialed, has ended
with an outcome its campaign's policy retries within both caps, its campaign is active (or
paused: the dialer defers a paused campaign's tasks, and judges every gate again at dial time)
and it has no retry yet.

Order: mark, send, commit, in one transaction. The mark (`retry_call_id`, set only WHERE it is
still null) is taken before the send, so a second writer of the same call waits on it and then
finds the call retried; it commits only after the send, so a process that dies in between
leaves no mark and the redelivered record sends again. That repeated send is harmless: the
retry's callId is deterministic (call_id_for(campaign, contact, attempts + 1)), so the dialer's
claim and the worker's Idempotency-Key see the same call, and the ledger the same row.
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from call_ledger import store
from shared.dial_task import PAUSED, call_id_for
from shared.retry_policy import RetryConfigError, plan_retry, retry_body, retry_policy_of

# The campaign statuses whose ended calls are retried; any other status ends them.
RETRYABLE_STATUSES = ("active", PAUSED)
# SQS's longest DelaySeconds, the dialer's longest deferral hop too.
MAX_DELAY_SECONDS = 900


class Skip(enum.StrEnum):
    """Why an ended, dialed call was not retried (counted, not an error)."""

    UNKNOWN_CAMPAIGN = "unknown_campaign"
    CAMPAIGN_INACTIVE = "campaign_inactive"
    CAMPAIGN_MISCONFIGURED = "campaign_misconfigured"
    NO_POLICY = "no_policy"
    # The policy does not retry this outcome, or a cap is reached.
    NOT_RETRIED = "not_retried"
    NO_TASK_BODY = "no_task_body"
    # Another writer marked it first (a concurrent delivery of the same record).
    ALREADY_RETRIED = "already_retried"


@dataclass(frozen=True)
class RetryTask:
    """A retry to put on the dial-tasks queue: `body` is the SQS body, MessageGroupId the campaign."""

    parent_call_id: str
    call_id: str
    campaign_id: str
    contact_id: str
    attempt: int
    body: str
    not_before: datetime


# Sends the tasks; returns the callIds of those it could not send (raising fails them all).
Enqueue = Callable[[Sequence[RetryTask]], Collection[str]]


@dataclass
class RetriesResult:
    enqueued: list[RetryTask] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    # Calls whose retry is not enqueued and not marked: their records must be delivered again.
    failed: list[str] = field(default_factory=list)


_CANDIDATES = """
SELECT a.call_id, a.campaign_id, a.contact_id, a.phone_number, a.attempt, a.outcome, a.ended_at,
       a.task_body, c.status, c.config,
       (SELECT count(*) FROM call_attempts o
         WHERE o.contact_id = a.contact_id AND o.campaign_id = a.campaign_id
           AND o.outcome = a.outcome AND o.attempt <= a.attempt) AS outcome_count
FROM call_attempt_keys k
JOIN call_attempts a ON a.call_id = k.call_id AND a.recorded_at = k.recorded_at
LEFT JOIN campaigns c ON c.id = a.campaign_id
WHERE k.call_id = ANY(%s) AND a.disposition = 'dialed' AND a.outcome IS NOT NULL AND a.retry_call_id IS NULL
ORDER BY a.call_id
"""

_MARK = """
UPDATE call_attempts a SET retry_call_id = v.retry_call_id
FROM unnest(%s::text[], %s::text[]) AS v(call_id, retry_call_id)
JOIN call_attempt_keys k ON k.call_id = v.call_id
WHERE a.call_id = v.call_id AND a.recorded_at = k.recorded_at AND a.retry_call_id IS NULL
RETURNING a.call_id
"""


def enqueue_retries(
    conn: psycopg.Connection, call_ids: Sequence[str], enqueue: Enqueue, now: datetime
) -> RetriesResult:
    """Plans, marks and enqueues the retries of `call_ids` (what store.write just touched)."""
    result = RetriesResult()
    if not call_ids:
        return result
    with conn.transaction():
        rows = conn.execute(_CANDIDATES, (list(call_ids),)).fetchall()
        planned = [task for row in rows if (task := _plan(row, result.skipped)) is not None]
        if not planned:
            return result
        # The retry's row first, pointing at its parent: the dialer may record the retry before
        # this commits (afterSeconds 0), and both writes merge into one row.
        store.write_rows(conn, [_child_row(task) for task in planned], now)
        marked = {
            call_id
            for (call_id,) in conn.execute(_MARK, ([t.parent_call_id for t in planned], [t.call_id for t in planned]))
        }
        to_send = [task for task in planned if task.parent_call_id in marked]
        result.skipped[Skip.ALREADY_RETRIED] += len(planned) - len(to_send)
        not_sent = set(enqueue(to_send)) if to_send else set()
        if not_sent:
            # Nothing is marked then: the records come again and every retry is sent again,
            # the ones that did go out included (harmless, as said above).
            result.failed = [task.parent_call_id for task in to_send]
            raise psycopg.Rollback()
        result.enqueued = to_send
    return result


def _plan(row: tuple[Any, ...], skipped: Counter[str]) -> RetryTask | None:
    call_id, campaign_id, contact_id, _phone, attempt, outcome, ended_at, body, status, config, outcome_count = row
    if status is None:
        skipped[Skip.UNKNOWN_CAMPAIGN] += 1
        return None
    if status not in RETRYABLE_STATUSES:
        skipped[Skip.CAMPAIGN_INACTIVE] += 1
        return None
    try:
        policy = retry_policy_of(config if isinstance(config, dict) else {})
    except RetryConfigError:
        skipped[Skip.CAMPAIGN_MISCONFIGURED] += 1
        return None
    if policy is None:
        skipped[Skip.NO_POLICY] += 1
        return None
    plan = plan_retry(policy, outcome, attempt, outcome_count, ended_at)
    if plan is None:
        skipped[Skip.NOT_RETRIED] += 1
        return None
    if not isinstance(body, dict):
        skipped[Skip.NO_TASK_BODY] += 1
        return None
    return RetryTask(
        parent_call_id=call_id,
        call_id=call_id_for(campaign_id, contact_id, plan.attempt),
        campaign_id=campaign_id,
        contact_id=contact_id,
        attempt=plan.attempt,
        body=json.dumps(retry_body(body, plan), separators=(",", ":")),
        not_before=plan.not_before,
    )


def _child_row(task: RetryTask) -> dict[str, Any]:
    body = json.loads(task.body)
    return {
        "call_id": task.call_id,
        "parent_call_id": task.parent_call_id,
        "campaign_id": task.campaign_id,
        "contact_id": task.contact_id,
        "phone_number": body.get("phoneNumber") if isinstance(body.get("phoneNumber"), str) else None,
        "attempt": task.attempt,
        "task_body": body,
    }


def sqs_enqueue(client: Any, queue_url: str, clock: Callable[[], datetime]) -> Enqueue:
    """An Enqueue onto the dial-tasks queue through an SQS client: MessageGroupId = campaignId,
    and a retry due later waits in the queue first (DelaySeconds, at most 900), so the dialer
    defers it fewer times."""

    def enqueue(tasks: Sequence[RetryTask]) -> list[str]:
        not_sent: list[str] = []
        for start in range(0, len(tasks), 10):
            chunk = tasks[start : start + 10]
            now = clock()
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": task.body,
                    "MessageGroupId": task.campaign_id,
                    "DelaySeconds": min(MAX_DELAY_SECONDS, max(0, math.ceil((task.not_before - now).total_seconds()))),
                }
                for i, task in enumerate(chunk)
            ]
            response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            not_sent += [chunk[int(failure["Id"])].call_id for failure in response.get("Failed", [])]
        return not_sent

    return enqueue
