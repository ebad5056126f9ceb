from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db_migrate.migrate import apply_migrations

GOOD_CONFIG = {"audioFileUrl": "s3://audio/welcome.wav", "ivrFlow": {"start": "menu"}, "maxConcurrentCalls": 50}


@pytest.fixture
def campaigns_db(postgres_server, fresh_database):
    """A fresh database with the migration applied; yields a function that seeds a campaign."""
    dsn = postgres_server.dsn(fresh_database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)

    def seed(campaign_id, status="active", config=None, name=None):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO campaigns (id, name, status, config) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, config = EXCLUDED.config",
                (
                    campaign_id,
                    name or f"Campaign {campaign_id}",
                    status,
                    Jsonb(GOOD_CONFIG if config is None else config),
                ),
            )

    seed.dsn = dsn
    seed.server = postgres_server
    seed.dbname = fresh_database
    return seed


def sqs_record(body, message_id="m-1"):
    """A record exactly as Pipes hands an SQS message to the enrichment."""
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:dial-tasks",
        "awsRegion": "us-east-1",
    }


def task(campaign="c-1", contact="k-1", phone="+972501234567", **extra):
    return {"campaignId": campaign, "contactId": contact, "phoneNumber": phone, **extra}
