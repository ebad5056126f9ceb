"""Ledger records written per second by call_ledger.store.write against the local PostgreSQL, in
batches of 10 and 100 (one statement and one commit per batch); the issue asks for >= 1,000/s.

Three kinds of batch, in the order a call's records come: attempts (new rows), their outcomes
(merged into those rows), and the attempts delivered again (merged, nothing changes).

Run: `.venv/bin/python benchmarks/bench_records.py` (creates and drops its own database).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from call_ledger import store
from call_ledger.records import AttemptRecord, OutcomeRecord, Record
from local_pipeline.database import throwaway_database
from local_pipeline.services import reuse_or_start_postgres

RECORDS = 6000
BATCH_SIZES = (10, 100)
TARGET = 1000
NOW = datetime.now(UTC)


def attempts(run: str) -> list[AttemptRecord]:
    return [
        AttemptRecord.dialed(
            campaign_id=f"c-{i % 20}",
            contact_id=f"{run}-k-{i}",
            attempt=0,
            phone_number=f"+1415{i:07d}",
            task={
                "campaignId": f"c-{i % 20}",
                "contactId": f"{run}-k-{i}",
                "phoneNumber": f"+1415{i:07d}",
                "attempts": 0,
            },
            admitted_at=NOW,
            sent_at=NOW + timedelta(milliseconds=40),
            worker_status=202,
        )
        for i in range(RECORDS)
    ]


def outcomes(calls: Sequence[AttemptRecord]) -> list[OutcomeRecord]:
    return [OutcomeRecord(a.call_id, a.campaign_id, "no_answer", NOW + timedelta(seconds=30), 28.5) for a in calls]


def timed(conn: psycopg.Connection, records: Sequence[Record], size: int) -> dict[str, float]:
    latencies = []
    start = time.perf_counter()
    for at in range(0, len(records), size):
        t0 = time.perf_counter()
        store.write(conn, records[at : at + size], NOW)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "records/s": len(records) / elapsed,
        "p50 ms": latencies[len(latencies) // 2],
        "p99 ms": latencies[int(len(latencies) * 0.99)],
    }


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    server, throwaway = reuse_or_start_postgres()
    results: list[tuple[int, str, dict[str, float], str]] = []
    try:
        with throwaway_database(server, prefix="bench") as name:
            with psycopg.connect(server.dsn(name), autocommit=True) as conn:
                settings: dict[str, str] = dict(
                    conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')")
                )
                store.write(conn, attempts("warm-up")[:200], NOW)
                for size in BATCH_SIZES:
                    calls = attempts(f"b{size}")
                    kinds: list[tuple[str, Sequence[Record]]] = [
                        ("attempts (new rows)", calls),
                        ("outcomes (merged)", outcomes(calls)),
                        ("attempts again (merged)", calls),
                    ]
                    for label, records in kinds:
                        before = load()
                        results.append((size, label, timed(conn, records, size), before))
                rows = conn.execute("SELECT count(*) FROM call_attempts").fetchone()
    finally:
        if throwaway:
            throwaway.destroy()
    print(
        f"call_ledger.store.write, {RECORDS} records per line, one statement and one commit per batch;"
        f" {os.cpu_count()} cores; fsync={settings.get('fsync')}, synchronous_commit={settings.get('synchronous_commit')};"
        f" {rows[0] if rows else '?'} rows at the end"
    )
    print(
        f"{'batch':>5}  {'records':<24} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}  {'load before':<16} target {TARGET}/s"
    )
    for size, label, row, before in results:
        verdict = "ok" if row["records/s"] >= TARGET else "BELOW"
        print(
            f"{size:>5}  {label:<24} {row['records/s']:>10.0f} {row['p50 ms']:>8.2f} {row['p99 ms']:>8.2f}  {before:<16} {verdict}"
        )
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
