"""The local pipeline enqueues as the scheduler does: MessageGroupId = the task's campaignId."""

from __future__ import annotations

import pytest

from local_pipeline.run import LocalRun


@pytest.mark.parametrize(
    "body, group",
    [
        ('{"campaignId": "c-1", "phoneNumber": "+14155550100"}', "c-1"),
        ("not json", "unknown"),
        ("[1, 2]", "unknown"),
        ('{"phoneNumber": "+14155550100"}', "unknown"),
        ('{"campaignId": 7}', "unknown"),
        ('{"campaignId": "has space"}', "unknown"),
        ('{"campaignId": ""}', "unknown"),
    ],
)
def test_the_group_is_the_campaign_id_or_unknown(body, group):
    assert LocalRun.group_of(body) == group
