"""SQS event source mapping target (the records queue) and the retention schedule's target:
write the call ledger's records, enqueue the retries they call for, answer the records to retry;
a database error fails the whole batch (retried, then the DLQ)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from call_ledger import core, telemetry
from call_ledger.clients import LedgerClients, build_clients
from call_ledger.env import LedgerEnv
from call_ledger.telemetry import logger


@functools.cache
def container() -> tuple[LedgerEnv, LedgerClients]:
    """Built on the first invocation, not at import: a bad environment fails an invocation."""
    env = LedgerEnv.from_environ()
    return env, build_clients(env)


@logger.inject_lambda_context
def handler(event, context):
    env, clients = container()
    response, report = core.process(event, env, clients, now=datetime.now(UTC))
    telemetry.observe(report)
    return response
