"""Fleet-wide pacing (GCRA, zero burst) and dial claims in Redis: one script call per batch.

The clock is Redis `TIME`: no Lambda's own clock is trusted. The scripts are the .lua files
beside this module; layout.py packs what they are sent and reads what they answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from dialer_worker.admission import scripts
from dialer_worker.admission.decision import PacerUnavailable, Reservation
from dialer_worker.admission.keys import Keys
from dialer_worker.admission.layout import (
    AdmissionRequest,
    BatchArgs,
    Settled,
    pack_finish,
    pack_reserve,
    pack_slow_down,
    read_reserve,
)
from dialer_worker.admission.tuning import (
    COOL_DOWN_MS,
    DECREASE_FACTOR,
    INCREASE_SHARE,
    MIN_RATE_SHARE,
    RECIPIENT_WINDOW_US,
    SLACK,
)
from shared.live_calls import PACE_STATE_TTL_S


def _unavailable_on_fault(script: Callable[..., Any]) -> Callable[..., Any]:
    """The script call, with redis-py's errors (and the socket's) raised as PacerUnavailable."""

    def call(**kwargs: Any) -> Any:
        try:
            return script(**kwargs)
        except Exception as exc:
            from redis.exceptions import RedisError  # loaded by then: the client made the call

            if isinstance(exc, RedisError | OSError):
                raise PacerUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise

    return call


class RedisPacer:
    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        claim_ttl_seconds: int,
        recipient_daily_limit: int = 0,
        max_concurrent_calls: int = 0,
        max_call_seconds: int = 900,
        restore_hold_seconds: int = 0,
        spread_us: int = 0,
    ) -> None:
        """`max_concurrent_calls`: the fleet's live-call cap (0: none); `max_call_seconds`: a
        live call's lease, after which it stops counting even if its call event never comes;
        `restore_hold_seconds`: a Redis found empty holds dialing until the ledger restored it, at
        most this long (0: no hold, for a dialer that sends no restore request); `spread_us`: the
        least time between two slots of one batch (tuning.dial_spacing_us; 0: none)."""
        self.redis = client
        self.keys = Keys(prefix)
        self._claim_ttl_ms = claim_ttl_seconds * 1000
        self.recipient_daily_limit = recipient_daily_limit
        self.max_concurrent_calls = max_concurrent_calls
        self.max_call_seconds = max_call_seconds
        self.restore_hold_seconds = restore_hold_seconds
        self.spread_us = spread_us
        # The epoch the last reply gave: the script is asked whether that epoch was restored.
        self._epoch: str | None = None
        self._reserve = _unavailable_on_fault(client.register_script(scripts.source(scripts.RESERVE)))
        self._finish = _unavailable_on_fault(client.register_script(scripts.source(scripts.FINISH)))
        self._slow_down = _unavailable_on_fault(client.register_script(scripts.source(scripts.SLOW_DOWN)))
        self.round_trips = 0
        # Round trips per script (reserve, finish, slow_down): what the benchmark reports per dial.
        self.calls: Counter[str] = Counter()

    def reserve(
        self,
        tasks: Sequence[AdmissionRequest],
        *,
        max_cps: float,
        max_wait_ms: int,
        lease_ms: int,
        hold_ms: int = 0,
        settle_ms: int = 0,
    ) -> Reservation:
        """Every gate for every task, in one round trip.

        hold_ms > 0 (sent by a container that has just got Redis back) starts a hold, unless one is
        already on: until it ends, every container defers instead of dialing, because containers
        that paced locally while Redis was away may still be dialing their local slots.
        settle_ms: how long after the batch's last slot its calls are counted live unless
        `finish` says the worker has them (0: the claim's lease)."""
        batch = BatchArgs(
            max_cps=max_cps,
            max_wait_us=max(0, max_wait_ms) * 1000,
            lease_us=lease_ms * 1000,
            claim_ttl_ms=self._claim_ttl_ms,
            slack=SLACK,
            hold_ms=hold_ms,
            recipient_limit=self.recipient_daily_limit,
            recipient_window_us=RECIPIENT_WINDOW_US,
            max_live=self.max_concurrent_calls,
            pace_ttl_s=PACE_STATE_TTL_S,
            settle_us=(settle_ms or lease_ms) * 1000,
            restore_hold_ms=self.restore_hold_seconds * 1000,
            restored_epoch=int(self._epoch or 0),
            spread_us=self.spread_us,
        )
        keys, args = pack_reserve(self.keys, batch, tasks)
        self._count("reserve")
        reservation = read_reserve(self._reserve(keys=keys, args=args), tasks, settle_us=batch.settle_us)
        self._epoch = reservation.epoch
        return reservation

    def finish(self, settled: Settled, *, successes: int, max_cps: float) -> None:
        """Settles a batch's claims, recipient counts and live entries as `settled` says (see
        Settled), and raises the shared rate additively. Claims of ambiguous calls are left to
        their lease; their live entries are kept, as the worker may be carrying them. One round
        trip."""
        parts = (settled.accepted, settled.released, settled.carried, settled.ended, settled.repeated)
        if not successes and not any(parts):
            return
        keys, args = pack_finish(
            self.keys,
            settled,
            increase=successes * INCREASE_SHARE * max_cps,
            max_cps=max_cps,
            call_lease_us=self.max_call_seconds * 1_000_000,
        )
        self._count("finish")
        self._finish(keys=keys, args=args)

    def slow_down(self, *, max_cps: float) -> float | None:
        """Halves the shared rate unless another worker did so within the cool-down."""
        floor = max(0.5, max_cps * MIN_RATE_SHARE)
        keys, args = pack_slow_down(
            self.keys, max_cps=max_cps, factor=DECREASE_FACTOR, floor=floor, cool_down_ms=COOL_DOWN_MS
        )
        self._count("slow_down")
        reply = self._slow_down(keys=keys, args=args)
        return float(reply) if reply else None

    def live_calls(self, campaign_id: str | None = None) -> int:
        """Live calls now (expired leases not counted), the fleet's or one campaign's."""
        key = self.keys.live(campaign_id) if campaign_id else self.keys.fleet_live
        seconds, micros = self.redis.time()
        return int(self.redis.zcount(key, f"({int(seconds) * 1_000_000 + int(micros)}", "+inf"))

    def effective_cps(self, max_cps: float) -> float:
        value = self.redis.get(self.keys.rate)
        return min(max_cps, float(value)) if value else max_cps

    def _count(self, script: str) -> None:
        self.round_trips += 1
        self.calls[script] += 1
