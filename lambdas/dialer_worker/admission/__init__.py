"""The dialer's admission path: the Redis scripts (reserve.lua, finish.lua, slow_down.lua) and
their typed face. A batch goes in as AdmissionRequests; a Reservation, one Admission (a Decision
and a wait) per task, comes out."""

from dialer_worker.admission.decision import Admission, Decision, PacerUnavailable, Reservation, RestoreState
from dialer_worker.admission.keys import Keys
from dialer_worker.admission.layout import AdmissionRequest, BatchArgs, Settled
from dialer_worker.admission.local_pacer import LocalPacer
from dialer_worker.admission.redis_pacer import RedisPacer
from dialer_worker.admission.tuning import LATE_TOLERANCE_S, RECIPIENT_WINDOW_US, SLACK, dial_spacing_us

__all__ = [
    "LATE_TOLERANCE_S",
    "RECIPIENT_WINDOW_US",
    "SLACK",
    "Admission",
    "AdmissionRequest",
    "BatchArgs",
    "Decision",
    "Keys",
    "LocalPacer",
    "PacerUnavailable",
    "RedisPacer",
    "Reservation",
    "RestoreState",
    "Settled",
    "dial_spacing_us",
]
