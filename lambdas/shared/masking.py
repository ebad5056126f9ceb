"""Phone numbers never reach the logs whole (docs/design.md, decision 5)."""

from __future__ import annotations

from typing import Any

_KEEP_DIGITS = 4


def mask_phone(value: Any) -> str:
    """`+972501234567` -> `+*******4567`: enough to tell calls apart, not enough to call.

    Anything that is not a string is shown by its type only, since it may still hold a number.
    """
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    if len(value) <= _KEEP_DIGITS:
        return "*" * len(value)
    head = "+" if value.startswith("+") else ""
    hidden = len(value) - len(head) - _KEEP_DIGITS
    return head + "*" * hidden + value[-_KEEP_DIGITS:]
