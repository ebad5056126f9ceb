"""EventBridge event-pattern matching, for the filters a pipe applies to SQS records.

Supported: exact values (a list of alternatives), `exists`, `prefix`, `anything-but` (values, or
`{"prefix": ...}`), and `numeric` ranges; nested objects; arrays in the event match when any
element matches. That covers every operator the stacks use, and the common ones beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_MISSING = object()

_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    for key, rule in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(rule, dict):
            if value is _MISSING or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not _matches_any(rule, value):
                return False
        else:
            raise ValueError(f"pattern for {key!r} must be an object or an array, got {rule!r}")
    return True


def _matches_any(alternatives: list, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for alternative in alternatives:
        if isinstance(alternative, dict) and "exists" in alternative:
            # exists applies to the field, not to each element of an array.
            if (value is not _MISSING) == bool(alternative["exists"]):
                return True
            continue
        if value is _MISSING:
            continue
        if any(_matches_one(alternative, v) for v in values):
            return True
    return False


def _matches_one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return rule == value and type(rule) is type(value) or (_is_number(rule) and _is_number(value) and rule == value)
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, dict) and "prefix" in excluded:
            return isinstance(value, str) and not value.startswith(excluded["prefix"])
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return value not in excluded
    if "numeric" in rule:
        if not _is_number(value):
            return False
        terms = rule["numeric"]
        return all(_NUMERIC_OPS[terms[i]](value, terms[i + 1]) for i in range(0, len(terms), 2))
    raise ValueError(f"unsupported pattern operator: {rule!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def record_matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """As Pipes filters SQS: `body` is matched as JSON; a body that is not JSON matches no pattern
    that looks into it."""
    event = dict(record)
    try:
        event["body"] = json.loads(record.get("body", ""))
    except (TypeError, ValueError):
        if "body" in pattern:
            return False
    return matches(pattern, event)
