"""The pipeline's four functions for one local run (the enrichment, the dialer, the call events and
the call ledger's writer): each function's core with an environment
and clients of the run's own, called as the pipe and the event source mapping call a Lambda
handler (event, context). Nothing process-wide: no environment variables, no module singletons,
so two runs in one process never see each other's settings, connections or reports.

Each environment is the one the stack would give the function (`stacks/function_env.py`),
pointed at the local services, and read through the function's contract as the handler reads its
variables (`Contract.from_environ(Contract.variables(...))`), so it is checked the same way.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from call_events import core as call_events_core
from call_events import telemetry as call_events_telemetry
from call_events.clients import build_clients as build_call_events_clients
from call_events.env import CallEventsEnv
from call_ledger import core as ledger_core
from call_ledger import telemetry as ledger_telemetry
from call_ledger.clients import build_clients as build_ledger_clients
from call_ledger.core import LedgerReport
from call_ledger.env import LedgerEnv
from dialer_worker import core as dialer_core
from dialer_worker.clients import DialerClients
from dialer_worker.clients import build_clients as build_dialer_clients
from dialer_worker.dispatch import BatchReport, Dispatcher
from dialer_worker.env import DialerEnv
from dialer_worker.telemetry import DialerTelemetry
from enrich_dial_task import core as enrichment_core
from enrich_dial_task import telemetry as enrichment_telemetry
from enrich_dial_task.clients import build_clients as build_enrichment_clients
from enrich_dial_task.enrich import EnrichmentReport
from enrich_dial_task.env import EnrichmentEnv
from shared.env_contract import EnvContract

C = TypeVar("C", bound=EnvContract)


def checked(contract: type[C], fields: dict[str, Any]) -> C:
    """The contract as the handler would read it from these fields written as variables."""
    return contract.from_environ(contract.variables(**fields))


class ReportTally:
    """Adds up the reports the cores return: each drop with its reason, each batch's counts."""

    def __init__(self) -> None:
        self.drops: Counter = Counter()
        self.dial_counts: Counter = Counter()
        self.deferrals: Counter = Counter()
        self.effective_cps: list[float] = []
        # The ledger: records written as new rows, merged into rows, dropped; retries enqueued;
        # records the producers sent (SQS acknowledged) and could not.
        self.ledger: Counter = Counter()
        self._lock = threading.Lock()

    def enrichment(self, report: EnrichmentReport) -> None:
        with self._lock:
            self.drops.update(str(drop.reason) for drop in report.drops)

    def records(self, sent: int, not_sent: int = 0) -> None:
        with self._lock:
            self.ledger["records_sent"] += sent
            self.ledger["records_not_sent"] += not_sent

    def ledger_batch(self, report: LedgerReport) -> None:
        with self._lock:
            self.ledger["rows_written"] += report.written
            self.ledger["records_merged"] += report.merged
            self.ledger["records_dropped"] += len(report.drops)
            self.ledger["retries_enqueued"] += len(report.retries.enqueued)

    def dialer(self, report: BatchReport) -> None:
        with self._lock:
            self.drops.update(str(drop.reason) for drop in report.drops)
            self.dial_counts.update(report.counts)
            self.deferrals.update(report.deferrals)
            self.dial_counts["RedisUnavailableBatches"] += report.redis_unavailable
            if report.effective_cps is not None:
                self.effective_cps.append(report.effective_cps)


class LocalFunctions:
    """The enrichment, the dialer and the call-events function of one run: one "container" each,
    shared by every poller thread as one warm container's invocations would share it."""

    def __init__(
        self,
        *,
        enrichment: EnrichmentEnv,
        dialer: DialerEnv,
        call_events: CallEventsEnv,
        ledger: LedgerEnv,
        sqs: Callable[[], Any],
        namespace: str,
    ) -> None:
        """`sqs`: gives the functions' SQS client (the run's endpoint: deferrals, records,
        retries); `namespace`: the metrics'."""
        self.enrichment_env, self.dialer_env, self.call_events_env = enrichment, dialer, call_events
        self.ledger_env = ledger
        self.namespace = namespace
        self._sqs = sqs
        self.tally = ReportTally()
        # Asked for here, not on a poller thread: boto3 makes clients unsafely across threads.
        enrichment_sqs, call_events_sqs, ledger_sqs = sqs(), sqs(), sqs()
        self.enrichment_clients = build_enrichment_clients(enrichment, sqs=lambda: enrichment_sqs)
        self._dialer = self._new_dialer()
        self.call_events_clients = build_call_events_clients(call_events, sqs=lambda: call_events_sqs)
        self.ledger_clients = build_ledger_clients(ledger, sqs=lambda: ledger_sqs)

    def _new_dialer(self) -> tuple[DialerClients, DialerTelemetry]:
        return build_dialer_clients(self.dialer_env, sqs=self._sqs), DialerTelemetry(namespace=self.namespace)

    def restart_dialer(self) -> None:
        """A new dialer container: new clients and pacing state; the live MAX_CPS read at once."""
        old, _ = self._dialer
        self._dialer = self._new_dialer()
        old.dispatcher.worker.close()

    @property
    def dispatcher(self) -> Dispatcher:
        """The dialer container's dispatcher (its pacer, live rate, worker client)."""
        return self._dialer[0].dispatcher

    def enrich(self, event: object, context: Any) -> list[dict]:
        items, report = enrichment_core.process(
            event, self.enrichment_env, self.enrichment_clients, now=datetime.now(UTC)
        )
        enrichment_telemetry.observe(report, namespace=self.namespace)
        self.tally.enrichment(report)
        self.tally.records(report.records_sent)
        return items

    def dial(self, event: object, context: Any) -> dialer_core.DialerResponse:
        clients, telemetry = self._dialer
        response, report = dialer_core.process(
            event, self.dialer_env, clients, remaining_ms=context.get_remaining_time_in_millis
        )
        telemetry.observe(report, clients.dispatcher.live_rate)
        self.tally.dialer(report)
        self.tally.records(report.counts["LedgerRecordsSent"], report.counts["LedgerRecordsNotSent"])
        return response

    def record_call_events(self, event: object, context: Any) -> call_events_core.CallEventsResponse:
        response, report = call_events_core.process(event, self.call_events_env, self.call_events_clients)
        call_events_telemetry.observe(report, namespace=self.namespace)
        self.tally.records(report.records_sent, report.records_not_sent)
        return response

    def write_ledger(self, event: object, context: Any) -> ledger_core.LedgerResponse:
        """The records queue's event source mapping target (and the retention job's)."""
        response, report = ledger_core.process(event, self.ledger_env, self.ledger_clients, now=datetime.now(UTC))
        ledger_telemetry.observe(report, namespace=self.namespace)
        self.tally.ledger_batch(report)
        return response

    def close(self) -> None:
        self.enrichment_clients.close()
        self._dialer[0].close()
        self.call_events_clients.close()
        self.ledger_clients.close()
