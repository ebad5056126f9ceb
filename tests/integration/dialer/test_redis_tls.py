"""The dialer's Redis client against a TLS redis-server with AUTH, as ElastiCache with in-transit
encryption and an auth token: commands over TLS, and a slow handshake that is not an outage."""

from __future__ import annotations

import time

import pytest
import redis
from support.env import dialer_env
from support.forwarder import TcpForwarder

from dialer_worker.admission import RedisPacer
from dialer_worker.deferral import Deferrer
from dialer_worker.dispatch import Dispatcher
from dialer_worker.worker_client import WorkerClient
from local_pipeline.services import HOST, ThrowawayRedis
from shared.redis_client import COMMAND_TIMEOUT_S, CONNECT_TIMEOUT_S, RedisEnv, redis_client

from .conftest import Remaining, item

TOKEN = "throwaway-auth-token"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-auth"
# Slower than a command may take, well within what a connection may take to set up.
HANDSHAKE_DELAY_S = 0.8


@pytest.fixture(scope="module")
def tls_redis():
    server = ThrowawayRedis(tls=True, password=TOKEN).start()
    yield server
    server.destroy()


@pytest.fixture
def tls_env(tls_redis, monkeypatch):
    """RedisEnv for a port, as deployed: TLS, the auth token from its secret, the system's CAs
    (here the throwaway CA, through SSL_CERT_FILE)."""
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("SSL_CERT_FILE", tls_redis.ca_file)
    monkeypatch.setattr(parameters, "get_secret", lambda arn, **_: TOKEN if arn == SECRET_ARN else None)
    return lambda port: dict(host=HOST, port=port, tls=True, auth_secret_arn=SECRET_ARN)


@pytest.fixture
def delaying_proxy(tls_redis):
    proxies = []

    def make(delay_s: float) -> TcpForwarder:
        """Holds the server's first bytes (the TLS ServerHello) back: a slow handshake."""
        proxies.append(TcpForwarder(tls_redis.port, first_reply_delay_s=delay_s))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


def test_client_runs_commands_over_tls_with_auth(tls_redis, tls_env, redis_key_prefix):
    client = redis_client(RedisEnv(**tls_env(tls_redis.port)))
    try:
        client.set(f"{{{redis_key_prefix}}}:tls", "1")
        assert client.get(f"{{{redis_key_prefix}}}:tls") == b"1"
        assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
        connection = client.connection_pool.get_connection()
        assert connection._sock.gettimeout() == COMMAND_TIMEOUT_S, "commands run under the command timeout"
        client.connection_pool.release(connection)
    finally:
        client.close()
    # The server does require the token: a client without it is refused.
    anonymous = redis.Redis(host=HOST, port=tls_redis.port, ssl=True, ssl_ca_certs=tls_redis.ca_file)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_handshake_slower_than_a_command_but_within_the_connect_timeout_connects(tls_env, delaying_proxy):
    assert COMMAND_TIMEOUT_S < HANDSHAKE_DELAY_S < CONNECT_TIMEOUT_S
    client = redis_client(RedisEnv(**tls_env(delaying_proxy(HANDSHAKE_DELAY_S).port)))
    try:
        started = time.monotonic()
        assert client.ping()
        assert time.monotonic() - started >= HANDSHAKE_DELAY_S
    finally:
        client.close()


def test_a_slow_handshake_on_a_cold_start_is_not_a_redis_outage(tls_env, delaying_proxy, worker, sqs, queue_url, redis_key_prefix, late_check_off):  # fmt: skip
    config = dialer_env(
        max_cps=50.0, worker_url=worker.url, reserved_concurrency=5, claim_ttl_seconds=3600,
        redis_quarantine_seconds=15, key_prefix=redis_key_prefix, defer_queue_url=queue_url,
        **tls_env(delaying_proxy(HANDSHAKE_DELAY_S).port), **late_check_off,
    )  # fmt: skip
    client = redis_client(config)
    dispatcher = Dispatcher(
        config=config,
        pacer=RedisPacer(client, prefix=redis_key_prefix, claim_ttl_seconds=3600),
        worker=WorkerClient(worker.url),
        deferrer=Deferrer(queue_url, lambda: sqs),
    )
    try:
        report = dispatcher.run([item(1)], Remaining(15))
    finally:
        dispatcher.worker.close()
        client.close()
    assert not report.redis_unavailable, report.redis_error
    assert report.counts["DialsSent"] == 1 and report.failures == []


def test_a_handshake_that_never_completes_fails_within_the_connect_timeouts(tls_env, delaying_proxy):
    client = redis_client(RedisEnv(**tls_env(delaying_proxy(60).port)))
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        # One try and one retry, each bounded by the connect timeout.
        assert time.monotonic() - started < 2 * CONNECT_TIMEOUT_S + 0.5
    finally:
        client.close()


def test_closing_the_client_closes_its_connections(tls_redis, tls_env):
    client = redis_client(RedisEnv(**tls_env(tls_redis.port)))
    client.ping()
    connection = client.connection_pool.get_connection()
    client.connection_pool.release(connection)
    client.close()
    assert connection._sock is None, "the client owns its pool, as redis.Redis(...) did"
