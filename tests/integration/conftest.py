"""The integration layer runs against real servers: the service fixtures (support/services.py)."""

from __future__ import annotations

from support.services import fresh_database, postgres_server, redis_key_prefix, redis_server, sqs_endpoint

__all__ = ["fresh_database", "postgres_server", "redis_key_prefix", "redis_server", "sqs_endpoint"]
