"""Enrichment batches of 10 against the local PostgreSQL: queries per batch and latency, cold and warm.

Run: `.venv/bin/python benchmarks/bench_enrichment.py` (creates and drops its own database).
"""

from __future__ import annotations

import json
import os
import statistics
import time

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "DialPipeline/bench")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from enrich_dial_task.campaigns import CampaignStore, connect_with  # noqa: E402
from enrich_dial_task.enrich import enrich_batch  # noqa: E402
from local_pipeline.database import DIALABLE_CONFIG, throwaway_database  # noqa: E402
from local_pipeline.services import reuse_or_start_postgres  # noqa: E402

BATCHES = 2000
CAMPAIGNS = 50


def records(i: int) -> list[dict]:
    return [
        {
            "messageId": f"m-{i}-{j}",
            "body": json.dumps(
                {
                    "campaignId": f"c-{(i * 10 + j) % CAMPAIGNS}",
                    "contactId": f"k-{i}-{j}",
                    "phoneNumber": f"+1415{i:04d}{j:03d}",
                }
            ),
        }
        for j in range(10)
    ]


def run(store: CampaignStore, clear_cache: bool) -> dict:
    latencies, queries = [], []
    start = time.perf_counter()
    for i in range(BATCHES):
        if clear_cache:
            store._cache.clear()
        before = store.queries
        t0 = time.perf_counter()
        result = enrich_batch(records(i), store, enriched_at="")
        latencies.append((time.perf_counter() - t0) * 1000)
        queries.append(store.queries - before)
        assert len(result.items) == 10
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "queries/batch": statistics.mean(queries),
        "batches/s": BATCHES / elapsed,
        "p50 ms": latencies[len(latencies) // 2],
        "p99 ms": latencies[int(len(latencies) * 0.99)],
    }


def main() -> None:
    server, throwaway = reuse_or_start_postgres()
    campaigns = [(f"c-{i}", "active", DIALABLE_CONFIG) for i in range(CAMPAIGNS)]
    try:
        with throwaway_database(server, campaigns, prefix="bench") as name:
            params = {"host": server.host, "port": server.port, "dbname": name, "user": server.user}
            store = CampaignStore(connect_with(params), ttl_seconds=60)
            cold = run(store, clear_cache=True)
            warm = run(store, clear_cache=False)
            store.close()
    finally:
        if throwaway:
            throwaway.destroy()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"enrichment, batches of 10, {BATCHES} batches each, {CAMPAIGNS} campaigns; load average {load}")
    print("one query per batch, cache or not: the do-not-call list is read uncached with the campaigns")
    print(f"{'cache':<6} {'queries/batch':>14} {'batches/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for label, row in (("cold", cold), ("warm", warm)):
        print(
            f"{label:<6} {row['queries/batch']:>14.2f} {row['batches/s']:>10.0f} {row['p50 ms']:>8.3f} {row['p99 ms']:>8.3f}"
        )


if __name__ == "__main__":
    main()
