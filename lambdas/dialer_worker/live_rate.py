"""The live MAX_CPS (runtime control, docs/design.md): an operator turns it without a deploy.

The stack's `MaxCps` parameter is the ceiling (`MAX_CPS`). The live value sits in an SSM
parameter per environment (`MAX_CPS_PARAMETER_NAME`), or locally in a Redis key under the
dialer's key prefix. The dialer uses min(live, ceiling); 0 is the kill switch.

One read per `ttl_s` (10 s) per container at most: SSM serves about 40 GetParameter calls a second
per account by default, and a fleet of dialers must stay far below that. A read that fails, or a
value that is not a number >= 0, keeps the last good value (the ceiling before the first one) until
the next read is due; a missing parameter or key means the ceiling.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

TTL_S = 10.0
# MAX_CPS_PARAMETER_NAME = "redis:<name>" reads the key "{<prefix>}:<name>" from the dialer's own
# Redis (the local pipeline); any other value is an SSM parameter name.
REDIS_SCHEME = "redis:"
LOCAL_KEY_NAME = "live_max_cps"


class Missing(Exception):
    """The parameter or key does not exist: the ceiling applies."""


def redis_key(prefix: str, name: str = LOCAL_KEY_NAME) -> str:
    """The local live-rate key, under the same hash tag as the pacing keys."""
    return "{" + prefix + "}:" + name


def parse(raw: Any) -> float:
    """A live value: a finite number >= 0, else ValueError."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"live MAX_CPS must be a number >= 0, got {raw!r}")
    return value


class LiveRate:
    """min(live, ceiling), read through `fetch` at most once per `ttl_s` of `clock`."""

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        ceiling: float,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = TTL_S,
    ) -> None:
        self._fetch = fetch
        self.ceiling = ceiling
        self._clock = clock
        self._ttl_s = ttl_s
        self._value = ceiling
        self._next_read: float | None = None
        self.reads = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_ssm(cls, client: Any, parameter_name: str, **kwargs: Any) -> LiveRate:
        def fetch() -> Any:
            try:
                return client.get_parameter(Name=parameter_name)["Parameter"]["Value"]
            except client.exceptions.ParameterNotFound:
                raise Missing(parameter_name) from None

        return cls(fetch, **kwargs)

    @classmethod
    def from_redis(cls, client: Any, key: str, **kwargs: Any) -> LiveRate:
        def fetch() -> Any:
            value = client.get(key)
            if value is None:
                raise Missing(key)
            return value

        return cls(fetch, **kwargs)

    def current(self) -> float:
        """The rate to pace at now: 0 stops dialing."""
        # One reader at a time: a caller must not take the ceiling while another is still
        # fetching the first value (the local runner invokes one dispatcher from several threads).
        with self._lock:
            return self._current()

    def _current(self) -> float:
        now = self._clock()
        if self._next_read is None or now >= self._next_read:
            self._next_read = now + self._ttl_s
            self.reads += 1
            try:
                self._value = min(self.ceiling, parse(self._fetch()))
                self.last_error = None
            except Missing:
                self._value = self.ceiling
                self.last_error = None
            except Exception as exc:  # SDK, network, Redis or a malformed value: keep the last good one
                self.last_error = f"{type(exc).__name__}: {exc}"
        return self._value
