"""The functions' environments for tests: the dev settings mapped as the stack and the local runner
map them (`stacks/function_env.py`), with the tests' own Redis, worker and shorter values, and
every admission gate that a test is not about switched off (`dialer_worker.env.GATES_OFF`)."""

from __future__ import annotations

from dialer_worker.env import GATES_OFF, DialerEnv
from stacks.function_env import dialer_fields, redis_fields
from stacks.settings import DEV

# The tests' values where they differ from the dev settings.
TEST_DIALER = dict(max_cps=50, reserved_concurrency=5, claim_ttl_seconds=3600, redis_quarantine_seconds=15)


def dialer_env(**fields) -> DialerEnv:
    base = dialer_fields(
        DEV,
        redis=redis_fields("127.0.0.1", 6379, tls=False),
        worker_url="http://unused",
        defer_queue_url=None,
    )
    return DialerEnv(**{**base, **TEST_DIALER, **GATES_OFF, **fields})


def new_container(handler_module) -> None:
    """What a new Lambda container starts from: the handler's environment and clients, built on
    its first invocation, are closed and forgotten, so the next one reads the variables again."""
    container = handler_module.container
    if container.cache_info().currsize:
        container()[1].close()
    container.cache_clear()
