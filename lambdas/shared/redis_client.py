"""The Redis (ElastiCache) that holds pacing state and dial claims: its environment contract and client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.env_contract import EnvContract, at_least, variable

# Short timeouts and one retry: a dead Redis must cost well under a second before the dialer
# falls back to local pacing.
SOCKET_TIMEOUT_S = 0.5
CONNECT_TIMEOUT_S = 0.5


@dataclass(frozen=True, kw_only=True)
class RedisEnv(EnvContract):
    host: str = variable("REDIS_HOST")
    port: int = variable("REDIS_PORT", check=at_least(1))
    tls: bool = variable("REDIS_TLS", default=False)
    # Deployed: the ElastiCache auth token in Secrets Manager. Locally: no AUTH.
    auth_secret_arn: str | None = variable("REDIS_AUTH_SECRET_ARN", default=None)
    # Every key lives under the hash tag {<prefix>}; the local runner and tests use their own.
    key_prefix: str = variable("REDIS_KEY_PREFIX", default="dial")


def redis_client(env: RedisEnv) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    password = None
    if env.auth_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        password = parameters.get_secret(env.auth_secret_arn, max_age=3600)
    return redis.Redis(
        host=env.host,
        port=env.port,
        ssl=env.tls,
        password=password,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
