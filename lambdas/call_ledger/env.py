"""The ledger function's environment: the ledger's database, the Redis a restore writes back
into, the dial-tasks queue retries go to, and the retention of the records."""

from __future__ import annotations

from dataclasses import dataclass

from shared.env_contract import at_least, variable
from shared.postgres import DatabaseEnv
from shared.redis_client import RedisEnv


@dataclass(frozen=True, kw_only=True)
class LedgerEnv(DatabaseEnv):
    # The dialer's Redis (RedisEnv's variables under redis_* fields: DatabaseEnv has host and
    # port too). Only a restore uses it.
    redis_host: str = variable("REDIS_HOST")
    redis_port: int = variable("REDIS_PORT", check=at_least(1))
    redis_tls: bool = variable("REDIS_TLS", default=False)
    redis_auth_secret_arn: str | None = variable("REDIS_AUTH_SECRET_ARN", default=None)
    redis_key_prefix: str = variable("REDIS_KEY_PREFIX", default="dial")
    # Where a retry goes: the dial-tasks queue (MessageGroupId = campaignId).
    dial_tasks_queue_url: str = variable("DIAL_TASKS_QUEUE_URL")
    # Whole months of records go once every row in them is older than this (the retention job).
    call_record_retention_days: int = variable("CALL_RECORD_RETENTION_DAYS", check=at_least(1))
    # The dialer's claim lifetime: a restore puts back the claims of calls accepted within it.
    claim_ttl_seconds: int = variable("CLAIM_TTL_SECONDS", check=at_least(1))
    # The dialer's recipient hash key, so a restore puts the recipient counts back too: Secrets
    # Manager when deployed, the variable locally; neither, claims only.
    recipient_hash_key_secret_arn: str | None = variable("RECIPIENT_HASH_KEY_SECRET_ARN", default=None)
    recipient_hash_key: str | None = variable("RECIPIENT_HASH_KEY", default=None)

    @property
    def redis(self) -> RedisEnv:
        return RedisEnv(
            host=self.redis_host,
            port=self.redis_port,
            tls=self.redis_tls,
            auth_secret_arn=self.redis_auth_secret_arn,
            key_prefix=self.redis_key_prefix,
        )
