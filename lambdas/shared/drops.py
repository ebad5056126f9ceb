"""Why a dial task was not dialed: one vocabulary for both functions, their logs and metrics.

A dropped task leaves the queue for good (Pipes deletes what the enrichment does not return; the
dialer reports it as done), so its log line and its count, by reason, are all that remain of it.
A deferred task goes back on the queue with a delay; the dialer counts it by DeferReason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class DropReason(enum.StrEnum):
    # The SQS record or the enrichment's item is not what the contract says.
    RECORD_NOT_AN_OBJECT = "record_not_an_object"
    MISSING_MESSAGE_ID = "missing_message_id"
    INVALID_JSON = "invalid_json"
    BODY_NOT_AN_OBJECT = "body_not_an_object"
    REPEATED_MESSAGE_ID = "repeated_message_id"
    # The dial task's own fields.
    INVALID_CAMPAIGN_ID = "invalid_campaign_id"
    INVALID_CONTACT_ID = "invalid_contact_id"
    INVALID_PHONE_NUMBER = "invalid_phone_number"
    INVALID_ATTEMPTS = "invalid_attempts"
    INVALID_METADATA = "invalid_metadata"
    INVALID_TIME_ZONE = "invalid_time_zone"
    INVALID_EXPIRES_AT = "invalid_expires_at"
    INVALID_NOT_BEFORE = "invalid_not_before"
    # Compliance: on the do-not-call list (enrichment); past its expiresAt or the platform's
    # maximum age (dialer, at dial time).
    DO_NOT_CALL = "do_not_call"
    EXPIRED = "expired"
    # More calls to this number in the last 24 h than the platform allows, across campaigns.
    RECIPIENT_LIMIT = "recipient_limit"
    # Its campaign.
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    CAMPAIGN_INACTIVE = "campaign_inactive"
    CAMPAIGN_MISCONFIGURED = "campaign_misconfigured"
    # The worker answered with a 4xx other than 409/429: it will never take this call.
    WORKER_REJECTED = "worker_rejected"


class DeferReason(enum.StrEnum):
    """Why the dialer put a task back on the queue: the Reason dimension of its Deferred metric
    (the alarm on the rate-limited share reads `rate`), so the values never change."""

    # No slot within this invocation at the fleet's rate (or a campaign's), or a recovery hold.
    RATE = "rate"
    # Another dialer holds its claim: it may be on its way to the worker.
    IN_FLIGHT = "in_flight"
    # Its calling window is closed now, or closes before its slot.
    OUTSIDE_WINDOW = "outside_window"
    # Redis is unreachable (or was, and its slots may still be dialed): paced locally, no slot.
    REDIS_DOWN = "redis_down"
    # Redis came back empty: held until the ledger has put the claims back (or the hold's bound).
    RESTORING = "restoring"
    # Its slot passed by more than the late tolerance before it could be sent.
    LATE = "late"
    # The kill switch: the live MAX_CPS is 0.
    STOPPED = "stopped"
    # Its campaign, or the fleet, has every live call it may have.
    LIVE_CALLS = "live_calls"
    # Its campaign is paused.
    PAUSED = "paused"
    # A retry whose notBefore has not come yet.
    NOT_BEFORE = "not_before"


@dataclass(frozen=True)
class Drop:
    """A task that will not be dialed, and what its log line may show (the phone is masked there)."""

    reason: DropReason
    message_id: Any = None
    campaign_id: Any = None
    phone_number: Any = None
    detail: str | None = None
    # What names the call in the ledger (its callId): a drop with valid ones gets a `dropped` record.
    contact_id: Any = None
    attempts: Any = None
