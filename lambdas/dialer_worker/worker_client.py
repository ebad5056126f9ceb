"""POST /dial to the Node.js worker, and what its reply means for the task."""

from __future__ import annotations

import enum

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # 2xx
    ALREADY_ACCEPTED = "already_accepted"  # 409: an earlier attempt got through
    OVERLOADED = "overloaded"  # 429 / 503: not taken; retry later and slow down
    REJECTED = "rejected"  # any other 4xx: never will be taken
    FAILED = "failed"  # other 5xx: not taken; retry
    UNDELIVERED = "undelivered"  # never reached the worker (refused, connect timeout)
    AMBIGUOUS = "ambiguous"  # sent, no answer: the worker may have taken it

    @property
    def delivered(self) -> bool:
        return self in (Outcome.ACCEPTED, Outcome.ALREADY_ACCEPTED)

    @property
    def surely_not_taken(self) -> bool:
        """The worker did not place this call: its claim may be released for the retry."""
        return self in (Outcome.OVERLOADED, Outcome.FAILED, Outcome.UNDELIVERED)


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status == 409:
        return Outcome.ALREADY_ACCEPTED
    if status in (429, 503):
        return Outcome.OVERLOADED
    if 400 <= status < 500:
        return Outcome.REJECTED
    return Outcome.FAILED


def _never_connected(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


class WorkerClient:
    """One requests.Session per container: connections to the worker are kept alive."""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.url = base_url.rstrip("/") + "/dial"
        self._session = session or requests.Session()

    def dial(self, command: dict, *, connect_timeout: float, read_timeout: float) -> tuple[Outcome, int | None]:
        try:
            response = self._session.post(
                self.url,
                json=command,
                headers={"Idempotency-Key": command["callId"]},
                timeout=(connect_timeout, read_timeout),
            )
        except requests.ConnectionError as exc:
            return (Outcome.UNDELIVERED if _never_connected(exc) else Outcome.AMBIGUOUS), None
        except requests.Timeout:
            return Outcome.AMBIGUOUS, None
        return classify(response.status_code), response.status_code
