"""The dial task and the item the enrichment hands the dialer: one typed contract for both sides.

The enrichment builds an `EnrichedTask` from an SQS record and returns `to_item()`; the dialer
reads it back with `EnrichedTask.from_item()`, which checks it with the same rules. The item keeps
the original SQS body byte for byte, its MessageGroupId and its message attributes, so a deferred
copy is the message the scheduler sent, unknown fields included, and never larger.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.drops import DropReason
from shared.retry_policy import RetryConfigError, retry_policy_of

MAX_ID_LENGTH = 128
# E.164: a plus, a non-zero country digit, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# What the dialer needs to place a call; without them the worker would reject it for good.
REQUIRED_CONFIG = ("audioFileUrl", "ivrFlow")
# The message attribute a deferred copy carries its first enqueue time in (ms since the epoch),
# so the platform's maximum age counts from the scheduler's send, not from the last deferral.
FIRST_SENT_ATTRIBUTE = "firstSentTimestamp"
# The one inactive status whose tasks are kept (deferred) rather than dropped.
PAUSED = "paused"
# Fixed forever: changing it would give every task a new callId, and redeliveries could dial twice.
CALL_ID_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4c55-9a4b-1b8f0b1d2c01")


def call_id_for(campaign_id: str, contact_id: str, attempts: int) -> str:
    """The same task and attempt always give the same callId (a UUIDv5 of the three)."""
    return str(uuid.uuid5(CALL_ID_NAMESPACE, f"{campaign_id}\x1f{contact_id}\x1f{attempts}"))


@dataclass(frozen=True)
class DialTask:
    """The fields of a dial task (the SQS body) that this pipeline reads."""

    campaign_id: str
    contact_id: str
    phone_number: str
    attempts: int = 0
    metadata: dict = field(default_factory=dict)
    # The recipient's IANA zone when the scheduler knows it better than the number does.
    time_zone: str | None = None
    # After it the task is dropped, never dialed (ISO 8601 with an offset in the body).
    expires_at: datetime | None = None
    # Not dialed before it (a retry's: its call's end + the policy's afterSeconds); deferred until then.
    not_before: datetime | None = None

    def fields(self) -> dict:
        fields: dict[str, Any] = {
            "campaignId": self.campaign_id,
            "contactId": self.contact_id,
            "phoneNumber": self.phone_number,
            "attempts": self.attempts,
        }
        if self.time_zone is not None:
            fields["timeZone"] = self.time_zone
        if self.expires_at is not None:
            fields["expiresAt"] = self.expires_at.isoformat()
        if self.not_before is not None:
            fields["notBefore"] = self.not_before.isoformat()
        return fields


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_ID_LENGTH


def parse_task(body: dict) -> DialTask | DropReason:
    """A dial task from a decoded body (or an item's task), or why it cannot be dialed."""
    if not _valid_id(body.get("campaignId")):
        return DropReason.INVALID_CAMPAIGN_ID
    if not _valid_id(body.get("contactId")):
        return DropReason.INVALID_CONTACT_ID
    phone = body.get("phoneNumber")
    if not isinstance(phone, str) or not E164.fullmatch(phone):
        return DropReason.INVALID_PHONE_NUMBER
    attempts = body.get("attempts", 0)
    # bool is an int in Python; `true` is not a number of attempts.
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        return DropReason.INVALID_ATTEMPTS
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        return DropReason.INVALID_METADATA
    time_zone = body.get("timeZone")
    if time_zone is not None and (not isinstance(time_zone, str) or len(time_zone) > MAX_ID_LENGTH):
        return DropReason.INVALID_TIME_ZONE
    expires_at = _aware_datetime(body.get("expiresAt"), DropReason.INVALID_EXPIRES_AT)
    if isinstance(expires_at, DropReason):
        return expires_at
    not_before = _aware_datetime(body.get("notBefore"), DropReason.INVALID_NOT_BEFORE)
    if isinstance(not_before, DropReason):
        return not_before
    return DialTask(body["campaignId"], body["contactId"], phone, attempts, metadata, time_zone, expires_at, not_before)


def _aware_datetime(value: Any, invalid: DropReason) -> datetime | DropReason | None:
    """ISO 8601 with an offset: a time without one could be read in any zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return invalid
    return parsed


@dataclass(frozen=True)
class CampaignConfig:
    """The parts of a campaign's `config` the dialer uses; `raw` is the whole object."""

    audio_file_url: str
    ivr_flow: Any
    max_cps: float | None
    raw: dict
    # Live calls of the campaign at once (None: no campaign cap).
    max_concurrent_calls: int | None = None
    # The answer-rate floor under which the campaign slows down (None: it never does).
    min_answer_rate: float | None = None


def parse_campaign_config(config: Any) -> CampaignConfig | None:
    """None when the config cannot place a call (missing audio or flow, a maxCps that is not a
    positive number, a maxConcurrentCalls that is not a positive integer, a minAnswerRate outside
    0..1, a malformed `retry`)."""
    if not isinstance(config, dict):
        return None
    try:
        retry_policy_of(config)
    except RetryConfigError:
        return None
    if any(config.get(key) in (None, "") for key in REQUIRED_CONFIG) or not isinstance(config["audioFileUrl"], str):
        return None
    max_cps = config.get("maxCps")
    if max_cps is not None and (not _number(max_cps) or max_cps <= 0):
        return None
    max_live = config.get("maxConcurrentCalls")
    if max_live is not None and (isinstance(max_live, bool) or not isinstance(max_live, int) or max_live <= 0):
        return None
    min_rate = config.get("minAnswerRate")
    if min_rate is not None and (not _number(min_rate) or not 0 <= min_rate <= 1):
        return None
    return CampaignConfig(
        config["audioFileUrl"],
        config["ivrFlow"],
        float(max_cps) if max_cps else None,
        config,
        max_concurrent_calls=max_live,
        min_answer_rate=float(min_rate) if min_rate is not None else None,
    )


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


@dataclass(frozen=True)
class EnrichedTask:
    message_id: str
    body: str  # the SQS body as the scheduler sent it
    task: DialTask
    campaign_name: str
    config: CampaignConfig
    enriched_at: str
    message_group_id: str | None = None
    # As Pipes delivers them: {name: {"stringValue": ..., "dataType": ...}}.
    message_attributes: dict = field(default_factory=dict)
    # When the scheduler first enqueued it (ms since the epoch), carried across deferrals.
    first_sent_ms: int | None = None
    # The campaign's status: `active`, or `paused` (kept and deferred, never dialed while so).
    campaign_status: str = "active"

    @property
    def paused(self) -> bool:
        return self.campaign_status == PAUSED

    @property
    def campaign_id(self) -> str:
        return self.task.campaign_id

    @property
    def phone_number(self) -> str:
        return self.task.phone_number

    @functools.cached_property
    def call_id(self) -> str:
        # Computed once: a batch asks each task's callId a score of times, and a UUIDv5 is a hash.
        return call_id_for(self.task.campaign_id, self.task.contact_id, self.task.attempts)

    def to_item(self) -> dict:
        return {
            "messageId": self.message_id,
            "body": self.body,
            "messageGroupId": self.message_group_id,
            "messageAttributes": self.message_attributes,
            "firstSentMs": self.first_sent_ms,
            "task": self.task.fields(),
            "campaign": {
                "id": self.task.campaign_id,
                "name": self.campaign_name,
                "status": self.campaign_status,
                "config": self.config.raw,
            },
            "enrichedAt": self.enriched_at,
        }

    @classmethod
    def from_item(cls, item: Any) -> EnrichedTask | DropReason:
        """The item back, checked by the rules that built it; or why it cannot be dialed."""
        if not isinstance(item, dict):
            return DropReason.RECORD_NOT_AN_OBJECT
        message_id = item.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            return DropReason.MISSING_MESSAGE_ID
        if not isinstance(item.get("body"), str):
            return DropReason.BODY_NOT_AN_OBJECT
        fields = item.get("task")
        task = parse_task(fields) if isinstance(fields, dict) else DropReason.BODY_NOT_AN_OBJECT
        if isinstance(task, DropReason):
            return task
        campaign = item.get("campaign")
        config = parse_campaign_config(campaign.get("config") if isinstance(campaign, dict) else None)
        if config is None or not isinstance(campaign, dict):
            return DropReason.CAMPAIGN_MISCONFIGURED
        attributes = item.get("messageAttributes")
        group = item.get("messageGroupId")
        first_sent = item.get("firstSentMs")
        return cls(
            message_id=message_id,
            body=item["body"],
            task=task,
            campaign_name=str(campaign.get("name") or ""),
            config=config,
            enriched_at=str(item.get("enrichedAt") or ""),
            message_group_id=group if isinstance(group, str) and group else None,
            message_attributes=attributes if isinstance(attributes, dict) else {},
            first_sent_ms=first_sent if isinstance(first_sent, int) and not isinstance(first_sent, bool) else None,
            # An item without a status is an active campaign's (the enrichment drops the others).
            campaign_status=PAUSED if campaign.get("status") == PAUSED else "active",
        )
