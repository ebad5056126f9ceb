"""The pacer's old address, kept only for `dialer_worker/handler.py` until it imports
`dialer_worker.admission` (the admission path's home); delete this module then."""

from dialer_worker.admission import LATE_TOLERANCE_S, SLACK, LocalPacer, RedisPacer, Reservation

__all__ = ["LATE_TOLERANCE_S", "SLACK", "LocalPacer", "RedisPacer", "Reservation"]
