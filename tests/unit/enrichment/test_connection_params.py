"""shared.postgres: connection parameters from the contract and the secret, and their refresh."""

from __future__ import annotations

import pytest

from shared.env_contract import InvalidEnvironment
from shared.postgres import DatabaseEnv, connection_params, params_source

SECRET = {"host": "db.internal", "port": 5432, "dbname": "campaigns", "username": "app", "password": "p-1"}


class FakeSecrets:
    """get_secret(arn, force_fetch): the stored value, recording each call's force_fetch."""

    def __init__(self, value):
        self.value = dict(value)
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, arn, force_fetch):
        self.calls.append((arn, force_fetch))
        return dict(self.value)


def test_the_secret_gives_the_credentials_and_refresh_forces_a_fetch():
    secrets = FakeSecrets(SECRET)
    source = params_source(DatabaseEnv(secret_arn="arn:secret", host="proxy.internal"), get_secret=secrets)
    assert source()["password"] == "p-1"
    secrets.value["password"] = "p-2"
    assert source(refresh=True)["password"] == "p-2"
    assert secrets.calls == [("arn:secret", False), ("arn:secret", True)]


def test_secret_params_connect_to_the_proxy_with_ssl():
    params = connection_params(
        DatabaseEnv(secret_arn="arn:secret", host="proxy.internal"), get_secret=FakeSecrets(SECRET)
    )
    assert params == {
        "host": "proxy.internal",
        "port": 5432,
        "dbname": "campaigns",
        "user": "app",
        "password": "p-1",
        "sslmode": "require",
    }


def test_the_database_is_named_by_the_secret_else_by_db_name():
    without_dbname = {k: v for k, v in SECRET.items() if k != "dbname"}
    env = DatabaseEnv(secret_arn="arn:secret", name="campaigns")
    assert connection_params(env, get_secret=FakeSecrets(without_dbname))["dbname"] == "campaigns"
    named = {**SECRET, "dbname": "from_secret"}
    assert connection_params(env, get_secret=FakeSecrets(named))["dbname"] == "from_secret"
    assert connection_params(DatabaseEnv(name="local_db"))["dbname"] == "local_db"


@pytest.mark.parametrize("env", [DatabaseEnv(secret_arn="arn:secret"), DatabaseEnv()])
def test_no_database_name_is_an_error_never_the_postgres_database(env):
    without_dbname = {k: v for k, v in SECRET.items() if k != "dbname"}
    with pytest.raises(InvalidEnvironment, match="DB_NAME"):
        connection_params(env, get_secret=FakeSecrets(without_dbname))


def test_a_ca_bundle_turns_on_certificate_and_host_name_verification():
    env = DatabaseEnv(secret_arn="arn:secret", host="proxy.internal", sslrootcert="/var/task/shared/global-bundle.pem")
    params = connection_params(env, get_secret=FakeSecrets(SECRET))
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", "/var/task/shared/global-bundle.pem")
    local = connection_params(DatabaseEnv(name="db", sslrootcert="/tmp/ca.pem"))
    assert (local["sslmode"], local["sslrootcert"]) == ("verify-full", "/tmp/ca.pem")
    assert "sslrootcert" not in connection_params(DatabaseEnv(name="db"))
