"""The admission keys that outlive a Redis loss, named in one place: the dialer's admission
script keeps them (dialer_worker/admission/keys.py) and the ledger puts them back after Redis
came back empty (call_ledger/restore.py), so both sides always name them the same. All under the
hash tag `{<prefix>}`, like every pipeline key."""

from __future__ import annotations

import hashlib
import hmac

from shared.live_calls import tag

# A claim's value once the worker took the call (or refused it for good): finish.lua's 'a'. Before
# that it is the lease's end (µs, Redis TIME).
CLAIM_ACCEPTED = "a"
# The recipient limit counts admitted calls to one number over a rolling day.
RECIPIENT_WINDOW_US = 24 * 3600 * 1_000_000
# How long "restored" stays set: far longer than any hold waits for it.
RESTORED_TTL_S = 3600


def claim_key(prefix: str, call_id: str) -> str:
    """String: the lease's end (µs) while the call is being dialed, CLAIM_ACCEPTED once settled;
    it lives the claim TTL from its admission."""
    return f"{tag(prefix)}:claim:{call_id}"


def recipient_key(prefix: str, recipient: str | None) -> str:
    """Sorted set of the calls admitted to one number: member its claim key, score its slot (µs).
    `recipient` is the keyed hash of the number (recipient_hash), never the number itself."""
    return f"{tag(prefix)}:recipient:{recipient or '-'}"


def recipient_hash(key: bytes, phone_number: str) -> str:
    """The recipient limit's name for a number: a keyed hash, so Redis never holds a phone number
    and a copy of its keys cannot be turned back into one without the secret key."""
    return hmac.new(key, phone_number.encode(), hashlib.sha256).hexdigest()[:32]


def epoch_key(prefix: str) -> str:
    """The claims' epoch: set once by the admission script, never expires; a Redis without it has
    lost the claims too."""
    return f"{tag(prefix)}:epoch"


def restoring_key(prefix: str) -> str:
    """The restore hold: when it began (µs, Redis TIME), set by the admission script with the epoch."""
    return f"{tag(prefix)}:restoring"


def restored_key(prefix: str, epoch: str) -> str:
    """Set by the ledger once the claims and recipient counts of `epoch`'s loss are back."""
    return f"{tag(prefix)}:restored:{epoch}"
