"""Pipe target: dial each enriched task at its reserved slot; report only the items to retry."""

from __future__ import annotations

import functools

from dialer_worker import core
from dialer_worker.clients import DialerClients, build_clients
from dialer_worker.env import DialerEnv
from dialer_worker.telemetry import DialerTelemetry, logger


@functools.cache
def container() -> tuple[DialerEnv, DialerClients, DialerTelemetry]:
    """Built on the first invocation, not at import: the environment's problems, the secret fetch
    and the connections belong to an invocation (and its retry), and boto3 stays out of the Init."""
    env = DialerEnv.from_environ()
    return env, build_clients(env), DialerTelemetry()


@logger.inject_lambda_context
def handler(event, context):
    if not isinstance(event, list):
        logger.error("event is not the array the enrichment returns", extra={"type": type(event).__name__})
    env, clients, telemetry = container()
    response, report = core.process(event, env, clients, remaining_ms=context.get_remaining_time_in_millis)
    telemetry.observe(report, clients.dispatcher.live_rate)
    return response
