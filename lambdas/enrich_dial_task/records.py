"""Parsing and validating one SQS record as Pipes delivers it. No I/O, no Lambda types."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Union

MAX_ID_LENGTH = 128
# E.164: a plus, a non-zero country digit, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True)
class DialTask:
    message_id: str
    campaign_id: str
    contact_id: str
    phone_number: str
    attempts: int = 0
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be dialed, and why. Fields are what the log line may show."""

    reason: str
    message_id: Any = None
    campaign_id: Any = None
    phone_number: Any = None


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_ID_LENGTH


def parse_record(record: Any) -> Union[DialTask, Rejected]:
    if not isinstance(record, dict):
        return Rejected("record_not_an_object")
    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return Rejected("missing_message_id")
    try:
        body = json.loads(record.get("body"))
    except (TypeError, ValueError):
        return Rejected("invalid_json", message_id)
    if not isinstance(body, dict):
        return Rejected("body_not_an_object", message_id)

    campaign_id = body.get("campaignId")
    phone = body.get("phoneNumber")

    def reject(reason: str) -> Rejected:
        return Rejected(reason, message_id, campaign_id if isinstance(campaign_id, str) else None, phone)

    if not _valid_id(campaign_id):
        return reject("invalid_campaign_id")
    if not _valid_id(body.get("contactId")):
        return reject("invalid_contact_id")
    if not isinstance(phone, str) or not E164.fullmatch(phone):
        return reject("invalid_phone_number")
    attempts = body.get("attempts", 0)
    # bool is an int in Python; `true` is not a number of attempts.
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        return reject("invalid_attempts")
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        return reject("invalid_metadata")
    return DialTask(message_id, campaign_id, body["contactId"], phone, attempts, metadata)
