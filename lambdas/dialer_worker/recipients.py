"""The recipient limit's key: a keyed hash of the number, so Redis never holds a phone number and
a copy of its keys cannot be turned back into one without the secret key."""

from __future__ import annotations

import hashlib
import hmac


def recipient_hash(key: bytes, phone_number: str) -> str:
    return hmac.new(key, phone_number.encode(), hashlib.sha256).hexdigest()[:32]
