"""The call-events function's clients, built once per container: Redis and the script on it, and
the ledger's record sender (SQS, made on first use)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from call_events.env import CallEventsEnv
from call_events.loop import SEEN_TTL_S, CallLoop
from shared.aws_clients import sqs_client
from shared.call_records import RecordSender
from shared.redis_client import redis_client
from shared.sqs_wire import wire_factory


@dataclass(frozen=True)
class CallEventsClients:
    redis: Any
    loop: CallLoop
    records: RecordSender = field(default_factory=RecordSender.disabled)

    def close(self) -> None:
        self.redis.close()


def build_clients(env: CallEventsEnv, *, sqs: Callable[[], Any] = sqs_client) -> CallEventsClients:
    redis = redis_client(env)
    loop = CallLoop(
        redis,
        prefix=env.key_prefix,
        window=env.answer_rate_window,
        min_samples=env.answer_rate_min_samples,
        cool_down_seconds=env.answer_rate_cool_down_seconds,
        # A repeat is recognised for as long as the queue keeps it, and never shorter than two leases.
        seen_ttl_s=max(SEEN_TTL_S, 2 * env.max_call_seconds),
    )
    return CallEventsClients(
        redis=redis, loop=loop, records=RecordSender(env.call_records_queue_url, wire_factory(sqs))
    )
