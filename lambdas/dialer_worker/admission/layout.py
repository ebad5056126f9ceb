"""The scripts' typed face: an AdmissionRequest per task in, a Reservation out, and the one place
that lays out each script's KEYS and ARGV and reads its reply (RedisPacer only sends them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from dialer_worker.admission.decision import Admission, Decision, Reservation
from dialer_worker.admission.keys import Keys

# reserve.lua's reply per task: its decision, its wait_us and its campaign's live calls.
REPLY_PER_TASK = 3


@dataclass(frozen=True)
class AdmissionRequest:
    """One task asking for a slot, with what its campaign allows."""

    call_id: str
    campaign_id: str
    campaign_max_cps: float | None = None  # the campaign's maxCps (None: MAX_CPS alone)
    recipient: str | None = None  # the keyed hash of the number (None: no recipient limit to count)
    campaign_max_live: int | None = None  # the campaign's maxConcurrentCalls (None: no cap)
    min_answer_rate: float | None = None  # the campaign's minAnswerRate (None: never slowed)


@dataclass(frozen=True)
class BatchArgs:
    """reserve.lua's ARGV[1..11], in this order and under the script's own names for them."""

    max_cps: float
    max_wait_us: int
    lease_us: int  # a claim's lease, from its slot
    claim_ttl_ms: int  # how long an accepted claim is kept
    slack: float
    hold_ms: int  # > 0: start the fleet-wide recovery hold (unless one is on)
    recipient_limit: int  # 0: no recipient limit
    recipient_window_us: int
    max_live: int  # the fleet's live-call cap (0: none)
    live_lease_us: int  # a live call stops counting this long after its slot
    pace_ttl_s: int  # how long a campaign's pace state outlives its last dial


def pack_reserve(keys: Keys, batch: BatchArgs, requests: Sequence[AdmissionRequest]) -> tuple[list[str], list[Any]]:
    """reserve.lua's KEYS and ARGV.

    KEYS: the global tat, the shared rate, the recovery hold, the slots taken ahead, the fleet's
    live calls; then per task its claim, its campaign's tat, its recipient, its campaign's live
    calls and its campaign's pace; last, the claims' epoch.
    ARGV: BatchArgs in order; then per task its campaign maxCps (0: none), its campaign's live-call
    cap (0: none), its campaign minAnswerRate (-1: none) and its callId.
    """
    batch_keys = [keys.tat, keys.rate, keys.hold, keys.ahead, keys.fleet_live]
    task_keys, task_args = [], []
    for r in requests:
        campaign = r.campaign_id
        task_keys += [keys.claim(r.call_id), keys.campaign_tat(campaign), keys.recipient(r.recipient)]
        task_keys += [keys.live(campaign), keys.pace(campaign)]
        min_rate = -1 if r.min_answer_rate is None else r.min_answer_rate
        task_args += [r.campaign_max_cps or 0, r.campaign_max_live or 0, min_rate, r.call_id]
    return [*batch_keys, *task_keys, keys.epoch], [*astuple(batch), *task_args]


def read_reserve(reply: Sequence[Any], requests: Sequence[AdmissionRequest]) -> Reservation:
    """reserve.lua's reply: REPLY_PER_TASK values per task, then the shared rate (thousandths),
    the fleet's live calls, the claims' epoch and the script's clock (µs, Redis TIME)."""
    per_task = [reply[REPLY_PER_TASK * i : REPLY_PER_TASK * (i + 1)] for i in range(len(requests))]
    admissions = [Admission(Decision(int(code)), int(wait_us)) for code, wait_us, _ in per_task]
    # A campaign in the batch more than once: its live calls after its last task.
    live = {r.campaign_id: int(values[2]) for r, values in zip(requests, per_task, strict=True)}
    rate, fleet_live, epoch, now_us = reply[-4:]
    return Reservation(
        admissions,
        int(rate) / 1000,
        fleet_live=int(fleet_live),
        campaign_live=live,
        epoch=epoch.decode() if isinstance(epoch, bytes) else str(epoch),
        now_us=int(now_us),
    )


def pack_finish(
    keys: Keys,
    *,
    accepted: Sequence[str],
    released: Sequence[str],
    increase: float,
    max_cps: float,
    recipients: Mapping[str, str] | None,
    ended: Mapping[str, str],
) -> tuple[list[str], list[Any]]:
    """finish.lua's KEYS and ARGV.

    KEYS: the shared rate; the claims, accepted then released; the recipients of the released
    calls that count against one; pairs of live-call keys (campaign, fleet) for the ended calls.
    ARGV: max_cps, the rate's increase, the number of claims, the number of recipients; 'a'
    (accepted) or 'd' (released) per claim; the recipients' members (their claim keys); then one
    member per pair of live keys, at the position of the pair's first key (the script reads
    ARGV[3 + k] for KEYS[k]).
    """
    claims = [keys.claim(c) for c in (*accepted, *released)]
    uncounted = [(keys.recipient(recipients[c]), keys.claim(c)) for c in released if recipients and c in recipients]
    live_keys = [k for campaign in ended.values() for k in (keys.live(campaign), keys.fleet_live)]
    packed_keys = [keys.rate, *claims, *(key for key, _ in uncounted), *live_keys]
    args: list[Any] = [max_cps, increase, len(claims), len(uncounted)]
    args += ["a"] * len(accepted) + ["d"] * len(released)
    args += [member for _, member in uncounted]
    args += [m for call_id in ended for m in (call_id, "")]
    return packed_keys, args


def pack_slow_down(
    keys: Keys, *, max_cps: float, factor: float, floor: float, cool_down_ms: int
) -> tuple[list[str], list[Any]]:
    """slow_down.lua's KEYS (the shared rate, the cool-down) and ARGV."""
    return [keys.rate, keys.cooldown], [max_cps, factor, floor, cool_down_ms]
