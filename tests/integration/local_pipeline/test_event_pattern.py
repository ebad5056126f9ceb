"""EventBridge pattern semantics the local pipe applies to SQS records."""

from __future__ import annotations

import json

import pytest

from local_pipeline.event_pattern import matches, record_matches
from local_pipeline.pipe import LocalPipe, pipes_record
from stacks.settings import DEV


def rec(body):
    return {"messageId": "m", "body": body if isinstance(body, str) else json.dumps(body)}


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"phoneNumber": "+1"}, True),
        ({"phoneNumber": None}, True),  # exists: the key is there, even with null
        ({"phone": "+1"}, False),
        ("not json", False),
        ('"just a string"', False),
    ],
)
def test_the_stacks_filter(body, expected):
    assert record_matches(DEV.pipe.filter_pattern, rec(body)) is expected


@pytest.mark.parametrize(
    "pattern, event, expected",
    [
        ({"a": ["x", "y"]}, {"a": "y"}, True),
        ({"a": ["x"]}, {"a": "z"}, False),
        ({"a": [5]}, {"a": 5.0}, True),
        ({"a": [{"exists": False}]}, {"b": 1}, True),
        ({"a": [{"exists": False}]}, {"a": 1}, False),
        ({"a": [{"prefix": "camp-"}]}, {"a": "camp-1"}, True),
        ({"a": [{"prefix": "camp-"}]}, {"a": 1}, False),
        ({"a": [{"anything-but": ["paused", "done"]}]}, {"a": "active"}, True),
        ({"a": [{"anything-but": "paused"}]}, {"a": "paused"}, False),
        ({"a": [{"anything-but": {"prefix": "test-"}}]}, {"a": "test-1"}, False),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 6}, False),
        ({"a": [{"numeric": [">=", 0]}]}, {"a": "3"}, False),
        ({"a": [{"numeric": [">=", 0]}]}, {"a": True}, False),
        ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
        ({"a": ["x"]}, {"a": ["w", "x"]}, True),  # arrays match on any element
    ],
)
def test_operators(pattern, event, expected):
    assert matches(pattern, event) is expected


def test_unknown_operator_is_an_error_not_a_silent_match():
    with pytest.raises(ValueError):
        matches({"a": [{"suffix-typo": "x"}]}, {"a": "x"})


def test_record_shape_is_what_pipes_sends():
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": "{}",
        "MD5OfBody": "d41d",
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    record = pipes_record(message, "arn:aws:sqs:us-east-1:000000000000:q")
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs" and record["body"] == "{}"


@pytest.mark.parametrize(
    "response, expected",
    [
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),  # unknown id: whole batch fails
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        (None, set()),
    ],
)
def test_partial_failure_semantics(response, expected):
    assert LocalPipe._failed_ids(response, [{"messageId": "a"}, {"messageId": "b"}]) == expected
