"""parse_record: every field rule, without a database."""

from __future__ import annotations

import json

import pytest

from enrich_dial_task.records import Record, parse_record
from shared.dial_task import DialTask
from shared.drops import Drop


def rec(body, message_id="m-1", **envelope):
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body), **envelope}


BASE = {"campaignId": "c-1", "contactId": "k-1", "phoneNumber": "+14155550100"}


def test_valid_task_with_defaults():
    record = rec(BASE)
    assert parse_record(record) == Record("m-1", record["body"], DialTask("c-1", "k-1", "+14155550100", 0, {}))


def test_the_original_body_group_and_attributes_are_kept_for_a_deferred_copy():
    body = json.dumps({**BASE, "note": "caf\u00e9 \u2615", "unknownField": [1, 2]}, ensure_ascii=False)
    attributes = {"source": {"stringValue": "crm", "dataType": "String"}}
    record = rec(body, attributes={"MessageGroupId": "c-1"}, messageAttributes=attributes)
    parsed = parse_record(record)
    assert isinstance(parsed, Record)
    assert parsed.body == body and parsed.message_group_id == "c-1" and parsed.message_attributes == attributes


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
    assert isinstance(result, Drop) and result.reason == reason and result.message_id == "m-1"


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
    parsed = parse_record(rec({**BASE, "metadata": None, "attempts": 3}))
    assert isinstance(parsed, Record)
    assert parsed.task.metadata == {} and parsed.task.attempts == 3
