"""POST /dial to the Node.js worker, and what its reply means for the task."""

from __future__ import annotations

import enum
import json

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError


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


class WorkerClient:
    """One urllib3 connection pool per container: connections to the worker are kept alive.

    urllib3 directly, not requests: requests' POST costs more than twice the CPU (it scans
    os.environ for proxies on every call, among others), and at Lambda's CPU share that CPU is
    what makes calls leave late; `benchmarks/bench_worker_client.py` measures both. No retries:
    a request that fails is the task's to retry, with its claim and its Idempotency-Key."""

    def __init__(self, base_url: str, *, pool_size: int = 10) -> None:
        base = base_url.rstrip("/")
        self.url = base + "/dial"
        kwargs = {}
        if base.startswith("https:"):
            import certifi  # the trust store requests used

            kwargs["ca_certs"] = certifi.where()
        # Not blocking: a thread beyond pool_size opens a connection of its own, never waits.
        self._pool = urllib3.connection_from_url(base, maxsize=pool_size, block=False, retries=False, **kwargs)
        self._path = urllib3.util.parse_url(self.url).request_uri

    def dial(self, command: dict, *, connect_timeout: float, read_timeout: float) -> tuple[Outcome, int | None]:
        body = json.dumps(command).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": command["callId"]}
        try:
            response = self._pool.urlopen(
                "POST",
                self._path,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
                retries=False,
                redirect=False,
            )
        except ConnectTimeoutError:
            # NewConnectionError (refused, no route) is one too: the request never left.
            return Outcome.UNDELIVERED, None
        except HTTPError:
            # A read timeout, a reset after sending: the worker may have taken it.
            return Outcome.AMBIGUOUS, None
        return classify(response.status), response.status
