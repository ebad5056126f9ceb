"""The enrichment's output items, checked before anything is claimed or dialed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Union

# Fixed forever: changing it would give every task a new callId, and redeliveries could dial twice.
CALL_ID_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4c55-9a4b-1b8f0b1d2c01")


def call_id_for(campaign_id: str, contact_id: str, attempts: int) -> str:
    """The same task and attempt always give the same callId (a UUIDv5 of the three)."""
    return str(uuid.uuid5(CALL_ID_NAMESPACE, f"{campaign_id}\x1f{contact_id}\x1f{attempts}"))


@dataclass(frozen=True)
class DialItem:
    message_id: str
    campaign_id: str
    contact_id: str
    phone_number: str
    attempts: int
    audio_file_url: str
    ivr_flow: Any
    metadata: dict = field(default_factory=dict)
    campaign_max_cps: Optional[float] = None

    @property
    def call_id(self) -> str:
        return call_id_for(self.campaign_id, self.contact_id, self.attempts)

    def dial_command(self) -> dict:
        return {
            "callId": self.call_id,
            "campaignId": self.campaign_id,
            "contactId": self.contact_id,
            "phoneNumber": self.phone_number,
            "audioFileUrl": self.audio_file_url,
            "ivrFlow": self.ivr_flow,
        }

    def task_body(self) -> dict:
        """The original dial task, as the scheduler wrote it: what a deferral puts back."""
        return {
            "campaignId": self.campaign_id,
            "contactId": self.contact_id,
            "phoneNumber": self.phone_number,
            "attempts": self.attempts,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class BadItem:
    reason: str
    message_id: Optional[str]


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def parse_item(item: Any) -> Union[DialItem, BadItem]:
    if not isinstance(item, dict):
        return BadItem("item_not_an_object", None)
    message_id = item.get("messageId")
    if not _text(message_id):
        return BadItem("missing_message_id", None)
    campaign = item.get("campaign")
    config = campaign.get("config") if isinstance(campaign, dict) else None
    if not isinstance(config, dict):
        return BadItem("missing_campaign_config", message_id)
    attempts = item.get("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        return BadItem("invalid_attempts", message_id)
    for name in ("campaignId", "contactId", "phoneNumber"):
        if not _text(item.get(name)):
            return BadItem(f"invalid_{name}", message_id)
    if not _text(config.get("audioFileUrl")) or config.get("ivrFlow") is None:
        return BadItem("missing_campaign_config", message_id)
    max_cps = config.get("maxCps")
    if max_cps is not None and (isinstance(max_cps, bool) or not isinstance(max_cps, (int, float)) or max_cps <= 0):
        return BadItem("invalid_campaign_max_cps", message_id)
    metadata = item.get("metadata") or {}
    return DialItem(
        message_id=message_id,
        campaign_id=item["campaignId"],
        contact_id=item["contactId"],
        phone_number=item["phoneNumber"],
        attempts=attempts,
        audio_file_url=config["audioFileUrl"],
        ivr_flow=config["ivrFlow"],
        metadata=metadata if isinstance(metadata, dict) else {},
        campaign_max_cps=float(max_cps) if max_cps is not None else None,
    )
