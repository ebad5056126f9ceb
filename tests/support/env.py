"""The dialer's environment for tests: every admission gate that a test is not about, switched off
the documented way (`dialer_worker.env.GATES_OFF`)."""

from __future__ import annotations

from dialer_worker.env import GATES_OFF, DialerEnv


def dialer_env(**fields) -> DialerEnv:
    base = dict(
        host="127.0.0.1",
        port=6379,
        max_cps=50,
        worker_url="http://unused",
        reserved_concurrency=5,
        claim_ttl_seconds=3600,
        redis_quarantine_seconds=15,
        default_time_zone="America/New_York",
        max_call_seconds=900,
    )
    return DialerEnv(**{**base, **GATES_OFF, **fields})
