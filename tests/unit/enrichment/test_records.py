"""parse_record: every field rule, without a database."""

from __future__ import annotations

import json

import pytest

from enrich_dial_task.records import DialTask, Rejected, parse_record


def rec(body, message_id="m-1"):
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body)}


BASE = {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": "+14155550100"}


def test_valid_task_with_defaults():
    assert parse_record(rec(BASE)) == DialTask("m-1", "c-1", "k-1", "+14155550100", 0, {})


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"campaignId": None}, "invalid_campaign_id"),
        ({"campaignId": "   "}, "invalid_campaign_id"),
        ({"campaignId": "x" * 129}, "invalid_campaign_id"),
        ({"contactId": 7}, "invalid_contact_id"),
        ({"phoneNumber": "+0123"}, "invalid_phone_number"),
        ({"phoneNumber": "+1 415 555 0100"}, "invalid_phone_number"),
        ({"phoneNumber": "+1234567890123456"}, "invalid_phone_number"),
        ({"phoneNumber": 14155550100}, "invalid_phone_number"),
        ({"attempts": -1}, "invalid_attempts"),
        ({"attempts": 1.5}, "invalid_attempts"),
        ({"attempts": "2"}, "invalid_attempts"),
        ({"attempts": False}, "invalid_attempts"),
        ({"metadata": "x"}, "invalid_metadata"),
    ],
)
def test_each_field_rule(change, reason):
    result = parse_record(rec({**BASE, **change}))
    assert isinstance(result, Rejected) and result.reason == reason and result.message_id == "m-1"


@pytest.mark.parametrize(
    "record, reason",
    [
        ("not a dict", "record_not_an_object"),
        ({"body": json.dumps(BASE)}, "missing_message_id"),
        ({"messageId": 5, "body": json.dumps(BASE)}, "missing_message_id"),
        (rec("{oops"), "invalid_json"),
        ({"messageId": "m-1", "body": None}, "invalid_json"),
        (rec('"a string"'), "body_not_an_object"),
    ],
)
def test_record_level_rejections(record, reason):
    assert parse_record(record).reason == reason


def test_null_metadata_is_empty_and_attempts_kept():
    task = parse_record(rec({**BASE, "metadata": None, "attempts": 3}))
    assert task.metadata == {} and task.attempts == 3
