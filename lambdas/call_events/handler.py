"""SQS event source mapping target: the worker's call events close the loop (live calls, answer
rate, pace). Answers the records to retry; a Redis fault fails the whole batch (retried)."""

from __future__ import annotations

import functools

from aws_lambda_powertools import Tracer

from call_events import core, telemetry
from call_events.clients import CallEventsClients, build_clients
from call_events.env import CallEventsEnv
from call_events.telemetry import logger
from shared.observability import CALL_EVENTS_SERVICE

tracer = Tracer(service=CALL_EVENTS_SERVICE)


@functools.cache
def container() -> tuple[CallEventsEnv, CallEventsClients]:
    """Built on the first invocation, not at import: a bad environment fails an invocation."""
    env = CallEventsEnv.from_environ()
    return env, build_clients(env)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    env, clients = container()
    response, report = core.process(event, env, clients)
    telemetry.observe(report)
    return response
