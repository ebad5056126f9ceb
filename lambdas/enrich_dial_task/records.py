"""One SQS record as Pipes delivers it: its envelope checked, its body parsed. No I/O, no Lambda types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.dial_task import FIRST_SENT_ATTRIBUTE, DialTask, parse_task
from shared.drops import Drop, DropReason


@dataclass(frozen=True)
class Record:
    message_id: str
    body: str
    task: DialTask
    message_group_id: str | None = None
    message_attributes: dict = field(default_factory=dict)
    first_sent_ms: int | None = None


def _first_sent_ms(attributes: dict, message_attributes: dict) -> int | None:
    """The first enqueue: a deferred copy's attribute, else this message's own SentTimestamp."""
    carried = message_attributes.get(FIRST_SENT_ATTRIBUTE)
    for raw in (carried.get("stringValue") if isinstance(carried, dict) else None, attributes.get("SentTimestamp")):
        try:
            return int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return None


def parse_record(record: Any) -> Record | Drop:
    if not isinstance(record, dict):
        return Drop(DropReason.RECORD_NOT_AN_OBJECT)
    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return Drop(DropReason.MISSING_MESSAGE_ID)
    body = record.get("body")
    try:
        decoded = json.loads(body)  # type: ignore[arg-type]  # a non-string is a drop below
    except (TypeError, ValueError):
        return Drop(DropReason.INVALID_JSON, message_id)
    if not isinstance(decoded, dict):
        return Drop(DropReason.BODY_NOT_AN_OBJECT, message_id)
    task = parse_task(decoded)
    if isinstance(task, DropReason):
        campaign_id = decoded.get("campaignId")
        return Drop(
            task,
            message_id,
            campaign_id if isinstance(campaign_id, str) else None,
            decoded.get("phoneNumber"),
            contact_id=decoded.get("contactId"),
            attempts=decoded.get("attempts", 0),
        )
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    group = attributes.get("MessageGroupId")
    message_attributes = record.get("messageAttributes")
    message_attributes = message_attributes if isinstance(message_attributes, dict) else {}
    return Record(
        message_id=message_id,
        body=body,  # type: ignore[arg-type]  # json.loads accepted it: str or bytes
        task=task,
        message_group_id=group if isinstance(group, str) and group else None,
        message_attributes=message_attributes,
        first_sent_ms=_first_sent_ms(attributes, message_attributes),
    )
