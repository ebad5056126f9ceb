"""The Redis (ElastiCache) that holds pacing state and dial claims: its environment contract and client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.env_contract import EnvContract, at_least, variable

# Each command on an open connection: a dead Redis must cost well under a second before the
# dialer falls back to local pacing.
COMMAND_TIMEOUT_S = 0.5
# A new connection's TCP connect, TLS handshake and AUTH: a cold container's first handshake (CA
# bundle, key exchange on a throttled CPU) may be slow without Redis being down.
CONNECT_TIMEOUT_S = 1.5


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
    connection_class = _connect_timeout_covers_handshake(redis.SSLConnection if env.tls else redis.Connection)
    pool = redis.ConnectionPool(
        connection_class=connection_class,
        host=env.host,
        port=env.port,
        password=password,
        socket_timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return redis.Redis.from_pool(pool)  # the client owns the pool: close() disconnects it, as before


def _connect_timeout_covers_handshake(base: type) -> type:
    """redis-py (8.1) applies socket_connect_timeout to the TCP connect only: the TLS handshake
    and AUTH already run under socket_timeout. This subclass keeps the connect timeout on the
    socket until the connection is set up (TLS, AUTH, HELLO), then switches to the command timeout."""

    class HandshakeUnderConnectTimeout(base):
        def _connect(self):
            command_timeout = self.socket_timeout
            self.socket_timeout = self.socket_connect_timeout  # what base._connect leaves on the socket
            try:
                return super()._connect()  # TCP connect, and for SSLConnection the handshake
            finally:
                self.socket_timeout = command_timeout

        def on_connect_check_health(self, check_health: bool = True):
            try:
                super().on_connect_check_health(check_health=check_health)  # AUTH, HELLO, SETINFO
            finally:
                if self._sock is not None:
                    self._sock.settimeout(self.socket_timeout)

    HandshakeUnderConnectTimeout.__name__ = f"HandshakeUnderConnectTimeout{base.__name__}"
    return HandshakeUnderConnectTimeout
