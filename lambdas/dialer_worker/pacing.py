"""Fleet-wide pacing (GCRA, zero burst) and dial claims in Redis: one script call per batch.

Every key lives under one hash tag, `{<prefix>}`, so the scripts also run on cluster-mode and
serverless caches. The clock is Redis `TIME`: no Lambda's own clock is trusted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Optional

# Slots are spaced (1 + SLACK) / rate apart, so a one-second window can take calls from slots
# spread over 1 + SLACK seconds and stay at or under the rate. That spread is shared between a
# call leaving late (at most LATE_TOLERANCE_S after its slot, or it is deferred) and the trip to
# the worker not taking the same time for every call (the rest, 15 ms). The local load test saw
# a rolling second of 201 at MAX_CPS 200 when the late tolerance alone used the whole 2% it had.
# The price: 2.4% of MAX_CPS. Kept after measuring again (bench_fairness.py, MAX_CPS 20, 2 cores at
# load 2.5-5): 21 calls in a row arrived at least 1.008 s apart (17 ms of the 25 used) from the
# dialers alone, and as little as 0.94 s apart through the whole local pipeline, whose SQS, pipe,
# handlers and worker share one interpreter: no slack to give back.
SLACK = 0.025
LATE_TOLERANCE_S = 0.010

DIAL, DEFER, DUPLICATE, IN_FLIGHT, RECIPIENT_LIMIT = 0, 1, 2, 3, 4
# The recipient limit counts admitted calls to one number over a rolling day.
RECIPIENT_WINDOW_US = 24 * 3600 * 1_000_000

# Every wait the script returns is in microseconds (wait_us).
# A campaign-limited task takes the first free global slot on the global grid at or after its
# campaign slot and leaves `tat` where it is, so other campaigns fill the slots before it; such
# slots wait in a sorted set (`ahead`) that every later reservation steps around.
# Why this and not re-asking for a global slot when the campaign slot comes due: one round trip per
# batch still, and the slot is held, not hoped for; measured 97% of MAX_CPS against 86% before.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_cps = tonumber(ARGV[1])
local max_wait_us = tonumber(ARGV[2])
local lease_us = tonumber(ARGV[3])
local claim_ttl_ms = tonumber(ARGV[4])
local slack = tonumber(ARGV[5])
local hold_ms = tonumber(ARGV[6])
local recipient_limit = tonumber(ARGV[7])
local recipient_window_us = tonumber(ARGV[8])
if hold_ms > 0 then redis.call('SET', KEYS[3], '1', 'NX', 'PX', hold_ms) end
local held_us = redis.call('PTTL', KEYS[3]) * 1000
local rate = tonumber(redis.call('GET', KEYS[2]) or max_cps)
if rate > max_cps then rate = max_cps end
local interval = math.ceil((1 + slack) * 1000000 / rate)
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
-- Global slots already taken at or after tat by campaign-limited tasks, ascending.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%d', tat - interval))
local ahead = {}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], string.format('%d', tat - interval), '+inf')) do
  ahead[#ahead + 1] = tonumber(v)
end
local added = {}
-- The first slot at or after x that is at least one interval from every slot in ahead.
local function free_from(x)
  for _, f in ipairs(ahead) do
    if f >= x + interval then break end
    if f > x - interval then x = f + interval end
  end
  return x
end
-- Gate 2, the recipient limit: fewer than recipient_limit calls admitted to this number (its
-- keyed hash) in the last window, across campaigns; 0 switches the gate off.
local function recipient_full(rkey)
  if recipient_limit <= 0 then return false end
  redis.call('ZREMRANGEBYSCORE', rkey, '-inf', string.format('%d', now - recipient_window_us))
  return redis.call('ZCARD', rkey) >= recipient_limit
end
local function count_recipient(rkey, claim_key, slot)
  if recipient_limit <= 0 then return end
  redis.call('ZADD', rkey, string.format('%d', slot), claim_key)
  redis.call('PEXPIRE', rkey, math.floor((slot - now + recipient_window_us) / 1000) + 1000)
end
local ctats = {}
local out = {}
local per_task = 3
local n = (#KEYS - 4) / per_task
for i = 1, n do
  local claim_key = KEYS[5 + per_task * (i - 1)]
  local ckey = KEYS[6 + per_task * (i - 1)]
  local rkey = KEYS[7 + per_task * (i - 1)]
  local ccps = tonumber(ARGV[8 + i])
  -- Gate 1, the claim: never dial a callId twice.
  local claim = redis.call('GET', claim_key)
  if claim == 'a' then
    out[#out + 1] = 2; out[#out + 1] = 0
  elseif claim and tonumber(claim) > now then
    out[#out + 1] = 3; out[#out + 1] = tonumber(claim) - now
  elseif recipient_full(rkey) then
    out[#out + 1] = 4; out[#out + 1] = 0
  elseif held_us > 0 then
    out[#out + 1] = 1; out[#out + 1] = held_us
  else
    local ctat = 0
    if ccps > 0 then ctat = ctats[ckey] or tonumber(redis.call('GET', ckey) or 0) end
    local gated = ctat > tat
    local slot
    if gated then
      slot = free_from(tat + math.ceil((ctat - tat) / interval) * interval)
    else
      slot = free_from(tat)
    end
    if slot - now > max_wait_us then
      out[#out + 1] = 1; out[#out + 1] = slot - now
    else
      if gated then
        local at = #ahead + 1
        while at > 1 and ahead[at - 1] > slot do at = at - 1 end
        table.insert(ahead, at, slot)
        added[#added + 1] = slot
      else
        tat = slot + interval
      end
      if ccps > 0 then ctats[ckey] = slot + math.ceil((1 + slack) * 1000000 / ccps) end
      redis.call('SET', claim_key, string.format('%d', slot + lease_us), 'PX', claim_ttl_ms)
      count_recipient(rkey, claim_key, slot)
      out[#out + 1] = 0; out[#out + 1] = slot - now
    end
  end
end
if tat > now then
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
for _, s in ipairs(added) do
  redis.call('ZADD', KEYS[4], s, string.format('%d', s))
end
if #ahead > 0 then
  redis.call('PEXPIRE', KEYS[4], math.floor((ahead[#ahead] + interval - now) / 1000) + 1000)
end
for k, v in pairs(ctats) do
  redis.call('SET', k, string.format('%d', v), 'PX', math.floor((v - now) / 1000) + 1000)
end
out[#out + 1] = math.floor(rate * 1000)
return out
"""

_FINISH = """
local max_cps = tonumber(ARGV[1])
local increase = tonumber(ARGV[2])
local claims = tonumber(ARGV[3])
for i = 2, claims + 1 do
  if ARGV[i + 2] == 'a' then
    redis.call('SET', KEYS[i], 'a', 'KEEPTTL')
  else
    redis.call('DEL', KEYS[i])
  end
end
-- A released call did not go out: it no longer counts against its recipient.
for i = claims + 2, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[i + 2])
end
if increase > 0 then
  local r = tonumber(redis.call('GET', KEYS[1]) or max_cps) + increase
  if r >= max_cps then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], tostring(r)) end
end
return 1
"""

_SLOW_DOWN = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[4])) then
  local max_cps = tonumber(ARGV[1])
  local r = tonumber(redis.call('GET', KEYS[1]) or max_cps)
  if r > max_cps then r = max_cps end
  r = math.max(tonumber(ARGV[3]), r * tonumber(ARGV[2]))
  redis.call('SET', KEYS[1], tostring(r))
  return tostring(r)
end
return false
"""

# Multiplicative decrease on 429/503, at most once per cool-down across the whole fleet.
DECREASE_FACTOR = 0.5
COOL_DOWN_MS = 2000
MIN_RATE_SHARE = 0.05
# Additive increase: each accepted call gives back 1% of MAX_CPS.
INCREASE_SHARE = 0.01


@dataclass(frozen=True)
class Decision:
    kind: int  # DIAL, DEFER, DUPLICATE, IN_FLIGHT
    wait_us: int = 0  # microseconds. DIAL: offset from now; DEFER/IN_FLIGHT: until a slot or the lease ends


@dataclass(frozen=True)
class Reservation:
    decisions: list[Decision]
    effective_cps: float


class RedisPacer:
    def __init__(self, client, *, prefix: str, claim_ttl_seconds: int, recipient_daily_limit: int = 0) -> None:
        self._redis = client
        self._tag = "{" + prefix + "}"
        self._claim_ttl_ms = claim_ttl_seconds * 1000
        self.recipient_daily_limit = recipient_daily_limit
        self._reserve = client.register_script(_RESERVE)
        self._finish = client.register_script(_FINISH)
        self._slow_down = client.register_script(_SLOW_DOWN)
        self.round_trips = 0

    @property
    def rate_key(self) -> str:
        return f"{self._tag}:rate"

    @property
    def hold_key(self) -> str:
        return f"{self._tag}:hold"

    def claim_key(self, call_id: str) -> str:
        return f"{self._tag}:claim:{call_id}"

    def _campaign_key(self, campaign_id: str) -> str:
        return f"{self._tag}:tat:campaign:{campaign_id}"

    def recipient_key(self, recipient: str | None) -> str:
        """`recipient` is the keyed hash of the number (never the number itself)."""
        return f"{self._tag}:recipient:{recipient or '-'}"

    def reserve(
        self,
        tasks: Sequence[tuple[str, str, Optional[float]]],
        *,
        max_cps: float,
        max_wait_ms: int,
        lease_ms: int,
        hold_ms: int = 0,
    ) -> Reservation:
        """tasks: (call_id, campaign_id, campaign max CPS or None[, recipient hash]). One round trip.

        hold_ms > 0 (sent by a container that has just got Redis back) starts a hold, unless one is
        already on: until it ends, every container defers instead of dialing, because containers
        that paced locally while Redis was away may still be dialing their local slots."""
        keys = [f"{self._tag}:tat", self.rate_key, self.hold_key, f"{self._tag}:tat:ahead"]
        args: list = [max_cps, max(0, max_wait_ms) * 1000, lease_ms * 1000, self._claim_ttl_ms, SLACK, hold_ms]
        args += [self.recipient_daily_limit, RECIPIENT_WINDOW_US]
        for call_id, campaign_id, campaign_cps, *recipient in tasks:
            keys += [self.claim_key(call_id), self._campaign_key(campaign_id), self.recipient_key(next(iter(recipient), None))]
            args.append(campaign_cps or 0)
        self.round_trips += 1
        reply = self._reserve(keys=keys, args=args)
        decisions = [Decision(int(reply[2 * i]), int(reply[2 * i + 1])) for i in range(len(tasks))]
        return Reservation(decisions, int(reply[-1]) / 1000)

    def finish(
        self,
        *,
        accepted: Sequence[str],
        released: Sequence[str],
        successes: int,
        max_cps: float,
        recipients: Mapping[str, str] | None = None,
    ) -> None:
        """Marks accepted calls, releases claims of calls that surely did not go out (and their
        count against the recipient, `recipients`: call_id -> recipient hash), and raises the
        shared rate additively. Claims of ambiguous calls are left to their lease. One round trip."""
        if not accepted and not released and not successes:
            return
        claims = [self.claim_key(c) for c in (*accepted, *released)]
        uncounted = [(self.recipient_key(recipients[c]), self.claim_key(c)) for c in released if recipients and c in recipients]
        keys = [self.rate_key, *claims, *(key for key, _ in uncounted)]
        args = [max_cps, successes * INCREASE_SHARE * max_cps, len(claims)] + ["a"] * len(accepted) + ["d"] * len(released)
        args += [member for _, member in uncounted]
        self.round_trips += 1
        self._finish(keys=keys, args=args)

    def slow_down(self, *, max_cps: float) -> Optional[float]:
        """Halves the shared rate unless another worker did so within the cool-down."""
        self.round_trips += 1
        reply = self._slow_down(
            keys=[self.rate_key, f"{self._tag}:cooldown"],
            args=[max_cps, DECREASE_FACTOR, max(0.5, max_cps * MIN_RATE_SHARE), COOL_DOWN_MS],
        )
        return float(reply) if reply else None

    def effective_cps(self, max_cps: float) -> float:
        value = self._redis.get(self.rate_key)
        return min(max_cps, float(value)) if value else max_cps


class LocalPacer:
    """Pacing without Redis: this container alone at MAX_CPS / reserved concurrency, so the whole
    fleet stays under MAX_CPS even when every container is degraded at once."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._next = 0.0

    def reserve(self, count: int, *, cps: float, max_wait_ms: int) -> Reservation:
        now = self._clock()
        interval = (1 + SLACK) / cps
        slot = max(now, self._next)
        decisions = []
        for _ in range(count):
            if (slot - now) * 1000 > max_wait_ms:
                decisions.append(Decision(DEFER, int((slot - now) * 1_000_000)))
                continue
            decisions.append(Decision(DIAL, int((slot - now) * 1_000_000)))
            slot += interval
        self._next = slot
        return Reservation(decisions, cps)
