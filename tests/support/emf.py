"""Helpers the test folders share."""

from __future__ import annotations

import json


def emitted(stdout: str) -> list[dict]:
    """The JSON lines Powertools wrote to stdout (structured logs and EMF metrics)."""
    lines = []
    for raw in stdout.splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
    return lines


def metric_value(value) -> float:
    """An EMF metric value: a number, or the list Powertools writes when one flush holds several."""
    return sum(value) if isinstance(value, list) else value
