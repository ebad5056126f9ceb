"""The dialer's settings, read once per container from its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class DialerConfig:
    max_cps: float
    worker_url: str
    reserved_concurrency: int
    claim_ttl_seconds: int
    key_prefix: str
    defer_queue_url: Optional[str]
    redis_host: str
    redis_port: int
    redis_tls: bool
    redis_auth_secret_arn: Optional[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "DialerConfig":
        max_cps = float(env.get("MAX_CPS", "100"))
        if max_cps <= 0:
            raise ValueError(f"MAX_CPS must be positive, got {max_cps}")
        return cls(
            max_cps=max_cps,
            worker_url=env.get("NODE_WORKER_URL", "http://127.0.0.1:3000").rstrip("/"),
            reserved_concurrency=max(1, int(env.get("DIALER_RESERVED_CONCURRENCY", "1"))),
            claim_ttl_seconds=int(env.get("CLAIM_TTL_SECONDS", "86400")),
            key_prefix=env.get("REDIS_KEY_PREFIX", "dial"),
            defer_queue_url=env.get("DEFER_QUEUE_URL") or None,
            redis_host=env.get("REDIS_HOST", "127.0.0.1"),
            redis_port=int(env.get("REDIS_PORT", "6379")),
            redis_tls=env.get("REDIS_TLS", "false").lower() == "true",
            redis_auth_secret_arn=env.get("REDIS_AUTH_SECRET_ARN") or None,
        )

    @property
    def degraded_cps(self) -> float:
        """Per-container rate without Redis: the fleet together stays under MAX_CPS."""
        return self.max_cps / self.reserved_concurrency
