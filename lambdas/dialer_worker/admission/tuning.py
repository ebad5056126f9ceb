"""The numbers admission runs with: slot spacing, lateness, a container's own spacing, the
recipient window, the rate's decrease and increase. The scripts get them as arguments (layout.py), never as literals."""

from __future__ import annotations

# The recipient window (a rolling day) is in shared: the ledger's restore counts calls over it too.
from shared.redis_keys import RECIPIENT_WINDOW_US as RECIPIENT_WINDOW_US

# Slots are spaced (1 + SLACK) / rate apart, so a one-second window can take calls from slots
# spread over 1 + SLACK seconds and stay at or under the rate. That spread is shared between a
# call leaving late (at most LATE_TOLERANCE_S after its slot, or it is deferred) and the trip to
# the worker not taking the same time for every call (the rest, 15 ms). The local load test saw
# a rolling second of 201 at MAX_CPS 200 when the late tolerance alone used the whole 2% it had.
# The price: 2.4% of MAX_CPS. Kept after measuring again (bench_fairness.py, MAX_CPS 20, 2 cores at
# load 2.5-5): 21 calls in a row arrived at least 1.008 s apart (17 ms of the 25 used) from the
# dialers alone, and as little as 0.94 s apart through the whole local pipeline when its SQS,
# pipe, handlers and worker still shared one interpreter (they have a process each now, and the
# worker stand-in takes arrival times from the kernel: worth measuring again before giving any back).
SLACK = 0.025
LATE_TOLERANCE_S = 0.010

# Multiplicative decrease on 429/503, at most once per cool-down across the whole fleet.
DECREASE_FACTOR = 0.5
COOL_DOWN_MS = 2000
MIN_RATE_SHARE = 0.05
# Additive increase: each accepted call gives back 1% of MAX_CPS.
INCREASE_SHARE = 0.01

# A container's own calls are spaced by the CPU it has: Lambda gives 1 vCPU per MB_PER_VCPU of
# memory, as a quota per 100 ms period, and a container whose calls need more CPU in one period
# than the quota gives is throttled and sends late. CALL_CPU_MS is what one call may take on a
# full core, the batch's share of reserving, settling and telemetry included: about twice what
# benchmarks/bench_lambda_share.py measures (`CPU ms/dial`), so spacing holds at its share.
MB_PER_VCPU = 1769
CALL_CPU_MS = 2.0


def dial_spacing_us(memory_mb: int | None) -> int:
    """The least time between two of one container's slots at this memory (None: a full core
    or more, no spacing beyond the global rate's)."""
    if memory_mb is None or memory_mb >= MB_PER_VCPU:
        return 0
    return round(CALL_CPU_MS * 1000 * MB_PER_VCPU / memory_mb)
