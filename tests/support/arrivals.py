"""What a test may assert about calls as they arrive at the worker stand-in.

The admission script's schedule is exact (integration/dialer/test_pacing_script.py judges it on
the slots it hands out); an arrival comes some time after its slot: the dialer's wake-up, the HTTP
request, the stand-in's thread, all on a shared machine that other work slows down. So arrivals
are held to the most calls that slots at `rate` can put in one second when each arrives up to
ARRIVAL_JITTER_S late; with no jitter that is the rate itself. Never a lower bound: how fast a
loaded machine dials is the benchmarks' business.
"""

from __future__ import annotations

import math

from dialer_worker.admission import SLACK

# Generous on purpose: a dialer that ignored the rate would still overshoot it many times over.
ARRIVAL_JITTER_S = 0.1


def most_per_second(rate: float, *, window_s: float = 1.0, jitter_s: float = ARRIVAL_JITTER_S) -> int:
    """The most arrivals in any window of `window_s` from slots (1 + SLACK) / rate apart."""
    return math.floor((window_s + jitter_s) * rate / (1 + SLACK) + 1e-9) + 1
