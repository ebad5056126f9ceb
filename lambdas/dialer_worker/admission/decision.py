"""What admission answers: a Decision per task (reserve.lua's codes), and the batch's Reservation."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PacerUnavailable(Exception):
    """The pacer's store did not answer (Redis down, a timeout): the dialer paces locally. Raised
    by RedisPacer for redis-py's errors, so the Dispatcher's code needs no Redis client."""


class Decision(enum.IntEnum):
    """reserve.lua's code for one task: the values are its DECISION table's (a unit test compares them)."""

    DIAL = 0  # a slot: dial wait_us from now
    DEFER = 1  # no slot within the wait allowed, or a recovery hold: wait_us until one
    DUPLICATE = 2  # the worker already took this callId: never dial it again
    IN_FLIGHT = 3  # another dialer holds its claim: wait_us until that lease ends
    RECIPIENT_LIMIT = 4  # its number has had every call the rolling day allows
    LIVE_CALLS = 5  # its campaign, or the fleet, has every live call it may have
    RESTORING = 6  # Redis came back empty and the ledger is restoring it: wait_us until the bound


class RestoreState(enum.IntEnum):
    """The restore hold as one batch found it: reserve.lua's RESTORE table (the same unit test)."""

    NONE = 0  # no hold (or none asked for: restore_hold_ms 0)
    HOLDING = 1  # a hold is on, the ledger has not said the keys are back
    STARTED = 2  # this batch found Redis empty and began the hold: its dialer asks for the restore
    TIMED_OUT = 3  # this batch found the hold past its bound and ended it: dialing goes on unrestored


@dataclass(frozen=True)
class Admission:
    """One task's answer: the decision and, for DIAL, DEFER and IN_FLIGHT, its wait in microseconds
    (DIAL: the slot's offset from now; DEFER, IN_FLIGHT: until a slot or the lease ends)."""

    decision: Decision
    wait_us: int = 0
    # DIAL, from Redis (µs, Redis TIME): its slot, and when the live entry admission gave it ends
    # unless `finish` extends it (its score: finish.lua tells that entry from an older one by it).
    slot_us: int | None = None
    lease_end_us: int | None = None


@dataclass(frozen=True)
class Reservation:
    admissions: list[Admission]  # one per task, in the order asked
    effective_cps: float
    # Live calls after this batch: the fleet's, and each campaign's the batch touched.
    fleet_live: int | None = None
    campaign_live: dict[str, int] = field(default_factory=dict)
    # The restore hold as this batch found it (NONE: none, or not asked for).
    restore: RestoreState = RestoreState.NONE
    # The claims' epoch in Redis: a change means Redis lost its claims (see Dispatcher).
    epoch: str | None = None
    # The script's clock when it decided (µs, Redis TIME, wall-clock time): every wait_us counts
    # from it. None: not from Redis (the local pacer's waits count from its own call).
    now_us: int | None = None
