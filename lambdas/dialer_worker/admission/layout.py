"""The scripts' typed face: an AdmissionRequest per task in, a Reservation out, and the one place
that lays out each script's KEYS and ARGV and reads its reply (RedisPacer only sends them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

from dialer_worker.admission.decision import Admission, Decision, Reservation, RestoreState
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
    """reserve.lua's ARGV[1..14], in this order and under the script's own names for them."""

    max_cps: float
    max_wait_us: int
    lease_us: int  # a claim's lease, from its slot; also its recipient count's until `finish`
    claim_ttl_ms: int  # how long an accepted claim is kept
    slack: float
    hold_ms: int  # > 0: start the fleet-wide recovery hold (unless one is on)
    recipient_limit: int  # 0: no recipient limit
    recipient_window_us: int
    max_live: int  # the fleet's live-call cap (0: none)
    pace_ttl_s: int  # how long a campaign's pace state outlives its last dial
    # An admitted call's live entry lasts until the batch's last slot plus this, unless `finish`
    # (which has run by then, or the invocation died) extends it.
    settle_us: int
    restore_hold_ms: int  # > 0: Redis found empty holds dialing until restored, at most this long
    restored_epoch: int  # the epoch whose restored key is sent (0: none seen yet)
    # The least time between two of this batch's slots (0: none), so a container's calls are
    # spread over its CPU periods (tuning.dial_spacing_us).
    spread_us: int = 0


def pack_reserve(keys: Keys, batch: BatchArgs, requests: Sequence[AdmissionRequest]) -> tuple[list[str], list[Any]]:
    """reserve.lua's KEYS and ARGV.

    KEYS: the global tat, the shared rate, the recovery hold, the slots taken ahead, the fleet's
    live calls, the restore hold, the restored key of `batch.restored_epoch`; then per task its claim, its campaign's tat, its recipient, its campaign's live
    calls and its campaign's pace; last, the claims' epoch.
    ARGV: BatchArgs in order; then per task its campaign maxCps (0: none), its campaign's live-call
    cap (0: none), its campaign minAnswerRate (-1: none) and its callId.
    """
    batch_keys = [keys.tat, keys.rate, keys.hold, keys.ahead, keys.fleet_live]
    batch_keys += [keys.restoring, keys.restored(str(batch.restored_epoch))]
    task_keys, task_args = [], []
    for r in requests:
        campaign = r.campaign_id
        task_keys += [keys.claim(r.call_id), keys.campaign_tat(campaign), keys.recipient(r.recipient)]
        task_keys += [keys.live(campaign), keys.pace(campaign)]
        min_rate = -1 if r.min_answer_rate is None else r.min_answer_rate
        task_args += [r.campaign_max_cps or 0, r.campaign_max_live or 0, min_rate, r.call_id]
    return [*batch_keys, *task_keys, keys.epoch], [*astuple(batch), *task_args]


def read_reserve(reply: Sequence[Any], requests: Sequence[AdmissionRequest], *, settle_us: int) -> Reservation:
    """reserve.lua's reply: REPLY_PER_TASK values per task, then the shared rate (thousandths),
    the fleet's live calls, the claims' epoch and the script's clock (µs, Redis TIME).
    `settle_us`: BatchArgs.settle_us, from which the score of each admitted call's live entry."""
    per_task = [reply[REPLY_PER_TASK * i : REPLY_PER_TASK * (i + 1)] for i in range(len(requests))]
    rate, fleet_live, epoch, now_us = reply[-4:]
    now = int(now_us)
    last_slot = max([now, *(now + int(wait) for code, wait, _ in per_task if int(code) == Decision.DIAL)])
    admissions = [
        Admission(Decision.DIAL, int(wait_us), now + int(wait_us), last_slot + settle_us)
        if int(code) == Decision.DIAL
        else Admission(Decision(int(code)), int(wait_us))
        for code, wait_us, _ in per_task
    ]
    # A campaign in the batch more than once: its live calls after its last task.
    live = {r.campaign_id: int(values[2]) for r, values in zip(requests, per_task, strict=True)}
    return Reservation(
        admissions,
        int(rate) / 1000,
        # Right after the tasks' values: the restore hold's state.
        restore=RestoreState(int(reply[REPLY_PER_TASK * len(requests)])),
        fleet_live=int(fleet_live),
        campaign_live=live,
        epoch=epoch.decode() if isinstance(epoch, bytes) else str(epoch),
        now_us=now,
    )


@dataclass(frozen=True)
class Settled:
    """What one batch's calls came to, for finish.lua. Call ids, with their campaign where the call
    has a live entry to settle."""

    accepted: Sequence[str] = ()  # claims the worker took, or refused for good: marked settled
    released: Sequence[str] = ()  # claims of calls that surely did not go out: deleted
    # The worker is (or may be) carrying the call: call_id -> (campaign, its slot, µs Redis TIME;
    # -1: not known, now): live for a call's lease from its slot.
    carried: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    ended: Mapping[str, str] = field(default_factory=dict)  # not carried: no longer live
    # A 409: the worker had the call from an earlier attempt. call_id -> (campaign, the score
    # admission gave its live entry): that entry goes, an older one stays.
    repeated: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    # call_id -> recipient hash, for every call that counted against one: a released call's
    # count goes, the others' lasts the recipient window.
    recipients: Mapping[str, str] = field(default_factory=dict)


def pack_finish(
    keys: Keys, settled: Settled, *, increase: float, max_cps: float, call_lease_us: int
) -> tuple[list[str], list[Any]]:
    """finish.lua's KEYS and ARGV.

    KEYS: the shared rate; the claims, accepted then released; the recipients of the released
    calls, then of the others; a pair of live-call keys (campaign, fleet) per live entry settled.
    ARGV: max_cps, the rate's increase, the number of claims, of released recipients and of
    other recipients, a call's lease (µs); 'a' (accepted) or 'd' (released) per claim; the
    recipients' members (their claim keys), in the same order; then three per pair of live keys:
    'keep', 'end' or 'repeat', the callId, and for 'keep' its slot, for 'repeat' the score
    admission gave it ('' for 'end').
    """
    released = set(settled.released)
    claims = [keys.claim(c) for c in (*settled.accepted, *settled.released)]
    recipients = settled.recipients
    uncounted = [(keys.recipient(r), keys.claim(c)) for c, r in recipients.items() if c in released]
    counted = [(keys.recipient(r), keys.claim(c)) for c, r in recipients.items() if c not in released]
    live: list[tuple[str, str, str, int | str]] = [("keep", c, cp, slot) for c, (cp, slot) in settled.carried.items()]
    live += [("end", c, campaign, "") for c, campaign in settled.ended.items()]
    live += [("repeat", c, campaign, score) for c, (campaign, score) in settled.repeated.items()]
    packed_keys = [keys.rate, *claims, *(key for key, _ in (*uncounted, *counted))]
    packed_keys += [k for _, _, campaign, _ in live for k in (keys.live(campaign), keys.fleet_live)]
    args: list[Any] = [max_cps, increase, len(claims), len(uncounted), len(counted), call_lease_us]
    args += ["a"] * len(settled.accepted) + ["d"] * len(settled.released)
    args += [member for _, member in (*uncounted, *counted)]
    args += [value for action, call_id, _, score in live for value in (action, call_id, score)]
    return packed_keys, args


def pack_slow_down(
    keys: Keys, *, max_cps: float, factor: float, floor: float, cool_down_ms: int
) -> tuple[list[str], list[Any]]:
    """slow_down.lua's KEYS (the shared rate, the cool-down) and ARGV."""
    return [keys.rate, keys.cooldown], [max_cps, factor, floor, cool_down_ms]
