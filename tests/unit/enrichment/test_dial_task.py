"""The shared dial-task parser (shared.dial_task.parse_task): the rules the enrichment, the dialer
and `dialctl enqueue` all apply."""

from __future__ import annotations

import pytest

from shared.dial_task import DialTask, parse_task
from shared.drops import DropReason

BODY = {"campaignId": "spring-sale", "contactId": "c-1", "phoneNumber": "+14155550100"}


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t", "\n"])
@pytest.mark.parametrize(
    ("field", "reason"),
    [("campaignId", DropReason.INVALID_CAMPAIGN_ID), ("contactId", DropReason.INVALID_CONTACT_ID)],
)
def test_an_empty_or_whitespace_only_id_is_invalid(field, reason, blank):
    assert parse_task({**BODY, field: blank}) is reason


def test_an_id_with_text_around_its_whitespace_is_kept_as_it_is():
    task = parse_task({**BODY, "campaignId": " spring-sale "})
    assert isinstance(task, DialTask) and task.campaign_id == " spring-sale "
