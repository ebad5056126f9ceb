"""The campaigns database: its environment contract, psycopg connection parameters, and how a
function opens a connection and tells a refused password."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.env_contract import EnvContract, InvalidEnvironment, at_least, variable

if TYPE_CHECKING:  # psycopg is imported on use: the dialer's package shares this module without it
    import psycopg


@dataclass(frozen=True, kw_only=True)
class DatabaseEnv(EnvContract):
    """In AWS the RDS-generated secret (DB_SECRET_ARN) holds host, port and credentials (and a
    `dbname` only if someone put one there: DB_NAME names the database otherwise), and DB_HOST,
    when also set, wins over its host (the RDS Proxy endpoint). Locally, DB_*."""

    secret_arn: str | None = variable("DB_SECRET_ARN", default=None)
    host: str | None = variable("DB_HOST", default=None)
    port: int = variable("DB_PORT", default=5432, check=at_least(1))
    # The database: the secret's `dbname` when it has one, else this. Neither is an error, never
    # a silent connection to the `postgres` maintenance database (whose tables stay empty).
    name: str | None = variable("DB_NAME", default=None)
    user: str = variable("DB_USER", default="postgres")
    password: str = variable("DB_PASSWORD", default="")
    sslmode: str = variable("DB_SSLMODE", default="prefer")
    # A CA bundle file (the RDS global bundle, shipped in the package: docs/infrastructure.md).
    # When set, the server's certificate and host name are verified (sslmode=verify-full).
    sslrootcert: str | None = variable("DB_SSLROOTCERT", default=None)


# (secret ARN, force a fetch past the cache) -> the secret's JSON as a dict.
SecretFetch = Callable[[str, bool], Mapping[str, Any]]


def fetch_secret(arn: str, force_fetch: bool = False) -> Mapping[str, Any]:
    """The secret from Secrets Manager through Powertools, cached for an hour per container;
    `force_fetch` bypasses the cache (after a rotation)."""
    # Imported here: the local path and the tests need no AWS SDK.
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_secret(arn, transform="json", max_age=3600, force_fetch=force_fetch)


def connection_params(
    env: DatabaseEnv, *, refresh: bool = False, get_secret: SecretFetch = fetch_secret
) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect(). With DB_SECRET_ARN the credentials come from the
    secret (cached; `refresh=True` fetches it again), and SSL is required: encrypted, and with
    DB_SSLROOTCERT also verified against that CA bundle (verify-full)."""
    if env.secret_arn:
        secret = get_secret(env.secret_arn, refresh)
        params = {
            "host": env.host or secret["host"],
            "port": int(secret.get("port", 5432)),
            "dbname": _database_name(secret.get("dbname") or env.name),
            "user": secret["username"],
            "password": secret["password"],
            "sslmode": "require",
        }
    else:
        params = {
            "host": env.host or "127.0.0.1",
            "port": env.port,
            "dbname": _database_name(env.name),
            "user": env.user,
            "password": env.password,
            "sslmode": env.sslmode,
        }
    if env.sslrootcert:
        params.update(sslmode="verify-full", sslrootcert=env.sslrootcert)
    return params


def _database_name(name: str | None) -> str:
    if not name:
        raise InvalidEnvironment(
            f"DatabaseEnv: no database name: the secret has no dbname and {DatabaseEnv.env_name('name')} is not set"
        )
    return name


def params_source(env: DatabaseEnv, get_secret: SecretFetch = fetch_secret) -> Callable[..., dict[str, Any]]:
    """`source()` gives the connection parameters, `source(refresh=True)` the same after fetching
    the secret again: what a client calls when the server refuses its password."""

    def source(refresh: bool = False) -> dict[str, Any]:
        return connection_params(env, refresh=refresh, get_secret=get_secret)

    return source


def open_connection(
    params: Mapping[str, Any], *, application_name: str, connect_timeout_s: int, statement_timeout_ms: int
) -> psycopg.Connection:
    """An autocommit connection with a bounded connect and statement time. The statement timeout
    is set after connecting, not as a startup option (`options=-c ...`): RDS Proxy refuses every
    startup command-line option ("Feature not supported"); autocommit, so the SET holds for the
    whole session."""
    import psycopg

    conn = psycopg.connect(
        **params, autocommit=True, connect_timeout=connect_timeout_s, application_name=application_name
    )
    try:
        conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
    except BaseException:
        conn.close()
        raise
    return conn


_AUTH_SQLSTATES = {"28P01", "28000"}  # invalid_password, invalid_authorization_specification


def is_authentication_failure(exc: Exception) -> bool:
    """The server (or RDS Proxy) refused the credentials: the caller fetches them again (a
    rotation). A refused connection often carries no SQLSTATE in psycopg, only libpq's message,
    so the message is checked too."""
    return getattr(exc, "sqlstate", None) in _AUTH_SQLSTATES or "password authentication failed" in str(exc)
