"""The enrichment's items as the dialer reads them, and the dial command each one becomes."""

from __future__ import annotations

from shared.dial_task import EnrichedTask


def dial_command(task: EnrichedTask) -> dict:
    """The worker's POST /dial body; its callId is also the Idempotency-Key."""
    return {
        "callId": task.call_id,
        "campaignId": task.task.campaign_id,
        "contactId": task.task.contact_id,
        "phoneNumber": task.task.phone_number,
        "audioFileUrl": task.config.audio_file_url,
        "ivrFlow": task.config.ivr_flow,
    }
