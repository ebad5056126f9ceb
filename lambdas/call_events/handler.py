"""SQS event source mapping target: the worker's call events close the loop (live calls, answer
rate, pace). Answers the records to retry; a Redis fault fails the whole batch (retried)."""

from __future__ import annotations

import functools

from call_events import core, telemetry
from call_events.clients import CallEventsClients, build_clients
from call_events.env import CallEventsEnv
from call_events.telemetry import logger

# No Powertools Tracer, as in the other functions: the function's Active tracing (the stack)
# records each invocation without the X-Ray SDK, whose import was most of this cold start.


@functools.cache
def container() -> tuple[CallEventsEnv, CallEventsClients]:
    """Built on the first invocation, not at import: a bad environment fails an invocation."""
    env = CallEventsEnv.from_environ()
    return env, build_clients(env)


@logger.inject_lambda_context
def handler(event, context):
    env, clients = container()
    response, report = core.process(event, env, clients)
    telemetry.observe(report)
    return response
