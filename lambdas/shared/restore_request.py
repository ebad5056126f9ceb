"""A restore request's wire form, one message on the records queue: the dialer sends it when it
finds Redis empty, the ledger reads it (call_ledger/restore_request.py) and puts the claims and
recipient counts back. In shared because the two are bundled apart.

    {"kind": "restore", "v": 1, "epoch": str, "requestedAt": ISO 8601 with an offset}

`epoch` is the claims' epoch the admission script set when it found Redis empty (µs, Redis TIME,
as digits): the ledger marks that epoch restored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KIND = "restore"
WIRE_VERSION = 1
# An epoch is the digits of a Redis TIME in µs: 16 today; a little room, never unbounded.
MAX_EPOCH_LENGTH = 20


@dataclass(frozen=True)
class RestoreRequest:
    epoch: str
    requested_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {"kind": KIND, "v": WIRE_VERSION, "epoch": self.epoch, "requestedAt": self.requested_at.isoformat()}

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"))


def is_restore(wire: Any) -> bool:
    """Whether a decoded record is a restore request (of any version): the ledger routes on it."""
    return isinstance(wire, dict) and wire.get("kind") == KIND


def from_wire(wire: dict[str, Any]) -> RestoreRequest | str:
    """The request from a decoded record of kind "restore", or what is wrong with it: "version",
    "epoch" or "requestedAt"."""
    version = wire.get("v")
    if version != WIRE_VERSION or isinstance(version, bool):
        return "version"
    epoch = wire.get("epoch")
    if not isinstance(epoch, str) or not epoch.isdigit() or len(epoch) > MAX_EPOCH_LENGTH:
        return "epoch"
    requested = wire.get("requestedAt")
    try:
        at = datetime.fromisoformat(requested.replace("Z", "+00:00")) if isinstance(requested, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        return "requestedAt"
    return RestoreRequest(epoch, at)
