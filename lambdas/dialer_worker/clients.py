"""The dialer's clients, built once per container from its environment: Redis (pacing, claims,
live calls), the live MAX_CPS reader (SSM or Redis), the recipient hash key (Secrets Manager or
the variable), the worker client, the deferral queue's SQS client, the restore requests' (the
records queue), wired into the dispatcher that keeps this container's
pacing state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialer_worker.dispatch import Dispatcher
from dialer_worker.env import DialerEnv
from dialer_worker.live_rate import REDIS_SCHEME, LiveRate, redis_key
from shared.aws_clients import sqs_client, ssm_client
from shared.call_records import RecordSender
from shared.recipient_key import read_recipient_key
from shared.redis_client import redis_client
from shared.sqs_wire import wire_factory

# Makes an AWS client on first use: boto3 is imported only then (cold import time), and the local
# runner passes its own, pointed at its SQS endpoint.
ClientFactory = Callable[[], Any]


@dataclass(frozen=True)
class DialerClients:
    redis: Any
    dispatcher: Dispatcher
    records: RecordSender = field(default_factory=RecordSender.disabled)

    def close(self) -> None:
        """What a container's end would release: the connections to the worker and to Redis."""
        self.dispatcher.worker.close()
        self.redis.close()


def build_live_rate(env: DialerEnv, redis: Any, ssm: ClientFactory = ssm_client) -> LiveRate | None:
    """The live MAX_CPS reader under runtime control, or None (MAX_CPS alone)."""
    name = env.max_cps_parameter_name
    if not name:
        return None
    if name.startswith(REDIS_SCHEME):
        return LiveRate.from_redis(redis, redis_key(env.key_prefix, name[len(REDIS_SCHEME) :]), ceiling=env.max_cps)
    return LiveRate.from_ssm(ssm(), name, ceiling=env.max_cps)


def recipient_key(env: DialerEnv) -> bytes | None:
    """The recipient limit's hash key: Secrets Manager when deployed, the variable locally."""
    if not env.recipient_daily_limit:
        return None
    return read_recipient_key(env.recipient_hash_key_secret_arn, env.recipient_hash_key) or b""


def build_clients(env: DialerEnv, *, sqs: ClientFactory = sqs_client, ssm: ClientFactory = ssm_client) -> DialerClients:
    from dialer_worker.admission import RedisPacer, dial_spacing_us
    from dialer_worker.deferral import Deferrer
    from dialer_worker.restore_requests import RestoreRequester
    from dialer_worker.worker_client import WorkerClient

    redis = redis_client(env)
    # Without the records queue no restore can come: then Redis found empty is not held for one.
    restore = RestoreRequester(env.call_records_queue_url, sqs) if env.call_records_queue_url else None
    dispatcher = Dispatcher(
        config=env,
        pacer=RedisPacer(
            redis,
            prefix=env.key_prefix,
            claim_ttl_seconds=env.claim_ttl_seconds,
            recipient_daily_limit=env.recipient_daily_limit,
            max_concurrent_calls=env.max_concurrent_calls,
            max_call_seconds=env.max_call_seconds,
            restore_hold_seconds=env.restore_hold_seconds if restore else 0,
            spread_us=dial_spacing_us(env.lambda_memory_mb),
        ),
        restore=restore,
        recipient_key=recipient_key(env),
        live_rate=build_live_rate(env, redis, ssm),
        worker=WorkerClient(env.worker_url),
        deferrer=Deferrer(env.defer_queue_url, sqs),
    )
    return DialerClients(
        redis=redis, dispatcher=dispatcher, records=RecordSender(env.call_records_queue_url, wire_factory(sqs))
    )
