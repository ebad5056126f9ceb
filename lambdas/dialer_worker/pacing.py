"""Fleet-wide pacing (GCRA, zero burst) and dial claims in Redis: one script call per batch.

Every key lives under one hash tag, `{<prefix>}`, so the scripts also run on cluster-mode and
serverless caches. The clock is Redis `TIME`: no Lambda's own clock is trusted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.live_calls import PACE_STATE_TTL_S, campaign_live_key, fleet_live_key, pace_key

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

DIAL, DEFER, DUPLICATE, IN_FLIGHT, RECIPIENT_LIMIT, LIVE_CALLS = 0, 1, 2, 3, 4, 5
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
local max_live = tonumber(ARGV[9])
local live_lease_us = tonumber(ARGV[10])
local pace_ttl_s = tonumber(ARGV[11])
local fleet_key = KEYS[5]
-- The claims' epoch: set once, never expires. A Redis that comes back without it (a failover
-- that lost writes) has lost the claims too; the dialers compare it with the one they saw.
local epoch_key = KEYS[#KEYS]
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = string.format('%d', now)
  redis.call('SET', epoch_key, epoch)
end
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
-- Gate 3, live calls: a call is live from its slot until its call event removes it, the dialer
-- releases it (it did not go out), or its lease ends (the score); expired members go first.
local live = {}
local function live_count(lkey)
  if live[lkey] == nil then
    redis.call('ZREMRANGEBYSCORE', lkey, '-inf', string.format('%d', now))
    live[lkey] = redis.call('ZCARD', lkey)
  end
  return live[lkey]
end
local function live_full(lkey, campaign_cap)
  if campaign_cap > 0 and live_count(lkey) >= campaign_cap then return true end
  return max_live > 0 and live_count(fleet_key) >= max_live
end
local function count_live(lkey, call_id, slot)
  local ends = slot + live_lease_us
  for _, k in ipairs({lkey, fleet_key}) do
    live_count(k)
    live[k] = live[k] + redis.call('ZADD', k, string.format('%d', ends), call_id)
    if redis.call('PTTL', k) < math.floor((ends - now) / 1000) then
      redis.call('PEXPIRE', k, math.floor((ends - now) / 1000) + 1000)
    end
  end
end
-- Gate 4, the campaign rate: its maxCps (else MAX_CPS) times its answer-rate pace factor, which
-- the call-events handler keeps; here the dialer records the campaign's minAnswerRate for it.
local paces = {}
local function campaign_rate(pkey, ccps, min_rate)
  if paces[pkey] == nil then
    paces[pkey] = tonumber(redis.call('HGET', pkey, 'factor') or 1)
    if min_rate >= 0 then
      redis.call('HSET', pkey, 'min_rate', tostring(min_rate))
      redis.call('EXPIRE', pkey, pace_ttl_s)
    else
      redis.call('HDEL', pkey, 'min_rate')
    end
  end
  local factor = paces[pkey]
  if ccps <= 0 then
    if factor >= 1 then return 0 end
    ccps = max_cps
  end
  return ccps * factor
end
local ctats = {}
local out = {}
local per_task = 5
local per_task_args = 4
local n = (#KEYS - 6) / per_task
for i = 1, n do
  local claim_key = KEYS[6 + per_task * (i - 1)]
  local ckey = KEYS[7 + per_task * (i - 1)]
  local rkey = KEYS[8 + per_task * (i - 1)]
  local lkey = KEYS[9 + per_task * (i - 1)]
  local pkey = KEYS[10 + per_task * (i - 1)]
  local a = 12 + per_task_args * (i - 1)
  local ccps = tonumber(ARGV[a])
  local campaign_cap = tonumber(ARGV[a + 1])
  local min_rate = tonumber(ARGV[a + 2])
  local call_id = ARGV[a + 3]
  -- Every gate is judged before this task takes anything, so a task refused by a later gate
  -- leaves no claim, no recipient count and no live call behind.
  -- Gate 1, the claim: never dial a callId twice.
  local claim = redis.call('GET', claim_key)
  if claim == 'a' then
    out[#out + 1] = 2; out[#out + 1] = 0
  elseif claim and tonumber(claim) > now then
    out[#out + 1] = 3; out[#out + 1] = tonumber(claim) - now
  elseif recipient_full(rkey) then
    out[#out + 1] = 4; out[#out + 1] = 0
  elseif live_full(lkey, campaign_cap) then
    out[#out + 1] = 5; out[#out + 1] = 0
  elseif held_us > 0 then
    out[#out + 1] = 1; out[#out + 1] = held_us
  else
    local crate = campaign_rate(pkey, ccps, min_rate)
    local ctat = 0
    if crate > 0 then ctat = ctats[ckey] or tonumber(redis.call('GET', ckey) or 0) end
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
      -- Gate 5, the global rate, then the commit: slot, claim, recipient count, live call.
      if gated then
        local at = #ahead + 1
        while at > 1 and ahead[at - 1] > slot do at = at - 1 end
        table.insert(ahead, at, slot)
        added[#added + 1] = slot
      else
        tat = slot + interval
      end
      if crate > 0 then ctats[ckey] = slot + math.ceil((1 + slack) * 1000000 / crate) end
      redis.call('SET', claim_key, string.format('%d', slot + lease_us), 'PX', claim_ttl_ms)
      count_recipient(rkey, claim_key, slot)
      count_live(lkey, call_id, slot)
      out[#out + 1] = 0; out[#out + 1] = slot - now
    end
  end
  out[#out + 1] = live_count(lkey)
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
out[#out + 1] = live_count(fleet_key)
out[#out + 1] = epoch
return out
"""

_FINISH = """
local max_cps = tonumber(ARGV[1])
local increase = tonumber(ARGV[2])
local claims = tonumber(ARGV[3])
local uncounted = tonumber(ARGV[4])
for i = 1, claims do
  if ARGV[4 + i] == 'a' then
    redis.call('SET', KEYS[1 + i], 'a', 'KEEPTTL')
  else
    redis.call('DEL', KEYS[1 + i])
  end
end
-- A released call did not go out: it no longer counts against its recipient.
for i = 1, uncounted do
  redis.call('ZREM', KEYS[1 + claims + i], ARGV[4 + claims + i])
end
-- Nor is it live: it leaves its campaign's live set and the fleet's (pairs of keys).
local first = 2 + claims + uncounted
for k = first, #KEYS, 2 do
  local member = ARGV[3 + k]
  redis.call('ZREM', KEYS[k], member)
  redis.call('ZREM', KEYS[k + 1], member)
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
    kind: int  # DIAL, DEFER, DUPLICATE, IN_FLIGHT, RECIPIENT_LIMIT, LIVE_CALLS
    wait_us: int = 0  # microseconds. DIAL: offset from now; DEFER/IN_FLIGHT: until a slot or the lease ends


@dataclass(frozen=True)
class Reservation:
    decisions: list[Decision]
    effective_cps: float
    # Live calls after this batch: the fleet's, and each campaign's the batch touched.
    fleet_live: int | None = None
    campaign_live: dict[str, int] = field(default_factory=dict)
    # The claims' epoch in Redis: a change means Redis lost its claims (see Dispatcher).
    epoch: str | None = None


class RedisPacer:
    def __init__(
        self,
        client,
        *,
        prefix: str,
        claim_ttl_seconds: int,
        recipient_daily_limit: int = 0,
        max_concurrent_calls: int = 0,
        max_call_seconds: int = 900,
    ) -> None:
        """`max_concurrent_calls`: the fleet's live-call cap (0: none); `max_call_seconds`: a
        live call's lease, after which it stops counting even if its call event never comes."""
        self._redis = client
        self._prefix = prefix
        self._tag = "{" + prefix + "}"
        self._claim_ttl_ms = claim_ttl_seconds * 1000
        self.recipient_daily_limit = recipient_daily_limit
        self.max_concurrent_calls = max_concurrent_calls
        self.max_call_seconds = max_call_seconds
        self._reserve = client.register_script(_RESERVE)
        self._finish = client.register_script(_FINISH)
        self._slow_down = client.register_script(_SLOW_DOWN)
        self.round_trips = 0
        # Round trips per script (reserve, finish, slow_down): what the benchmark reports per dial.
        self.calls: Counter = Counter()

    @property
    def epoch_key(self) -> str:
        return f"{self._tag}:epoch"

    @property
    def rate_key(self) -> str:
        return f"{self._tag}:rate"

    @property
    def hold_key(self) -> str:
        return f"{self._tag}:hold"

    @property
    def fleet_live_key(self) -> str:
        return fleet_live_key(self._prefix)

    def live_key(self, campaign_id: str) -> str:
        return campaign_live_key(self._prefix, campaign_id)

    def pace_key(self, campaign_id: str) -> str:
        return pace_key(self._prefix, campaign_id)

    def claim_key(self, call_id: str) -> str:
        return f"{self._tag}:claim:{call_id}"

    def _campaign_key(self, campaign_id: str) -> str:
        return f"{self._tag}:tat:campaign:{campaign_id}"

    def recipient_key(self, recipient: str | None) -> str:
        """`recipient` is the keyed hash of the number (never the number itself)."""
        return f"{self._tag}:recipient:{recipient or '-'}"

    def reserve(
        self,
        tasks: Sequence[tuple],
        *,
        max_cps: float,
        max_wait_ms: int,
        lease_ms: int,
        hold_ms: int = 0,
    ) -> Reservation:
        """tasks: (call_id, campaign_id, campaign max CPS or None[, recipient hash[, campaign
        maxConcurrentCalls or None[, campaign minAnswerRate or None]]]). One round trip.

        hold_ms > 0 (sent by a container that has just got Redis back) starts a hold, unless one is
        already on: until it ends, every container defers instead of dialing, because containers
        that paced locally while Redis was away may still be dialing their local slots."""
        keys = [f"{self._tag}:tat", self.rate_key, self.hold_key, f"{self._tag}:tat:ahead", self.fleet_live_key]
        args: list = [max_cps, max(0, max_wait_ms) * 1000, lease_ms * 1000, self._claim_ttl_ms, SLACK, hold_ms]
        args += [self.recipient_daily_limit, RECIPIENT_WINDOW_US]
        args += [self.max_concurrent_calls, self.max_call_seconds * 1_000_000, PACE_STATE_TTL_S]
        for call_id, campaign_id, campaign_cps, *rest in tasks:
            recipient, max_live, min_rate = (list(rest) + [None, None, None])[:3]
            keys += [
                self.claim_key(call_id),
                self._campaign_key(campaign_id),
                self.recipient_key(recipient),
                self.live_key(campaign_id),
                self.pace_key(campaign_id),
            ]
            args += [campaign_cps or 0, max_live or 0, -1 if min_rate is None else min_rate, call_id]
        keys.append(self.epoch_key)
        self.round_trips += 1
        self.calls["reserve"] += 1
        reply = self._reserve(keys=keys, args=args)
        decisions = [Decision(int(reply[3 * i]), int(reply[3 * i + 1])) for i in range(len(tasks))]
        live = {task[1]: int(reply[3 * i + 2]) for i, task in enumerate(tasks)}
        epoch = reply[-1].decode() if isinstance(reply[-1], bytes) else str(reply[-1])
        return Reservation(decisions, int(reply[-3]) / 1000, fleet_live=int(reply[-2]), campaign_live=live, epoch=epoch)

    def finish(
        self,
        *,
        accepted: Sequence[str],
        released: Sequence[str],
        successes: int,
        max_cps: float,
        recipients: Mapping[str, str] | None = None,
        ended: Mapping[str, str] | None = None,
    ) -> None:
        """Marks accepted calls, releases claims of calls that surely did not go out (and their
        count against the recipient, `recipients`: call_id -> recipient hash), ends the live calls
        that did not go out (`ended`: call_id -> campaign_id; a worker 4xx keeps its claim but is
        not live), and raises the shared rate additively. Claims of ambiguous calls are left to
        their lease, and so are their live calls. One round trip."""
        ended = ended or {}
        if not accepted and not released and not successes and not ended:
            return
        claims = [self.claim_key(c) for c in (*accepted, *released)]
        uncounted = [
            (self.recipient_key(recipients[c]), self.claim_key(c)) for c in released if recipients and c in recipients
        ]
        live_keys = [k for campaign in ended.values() for k in (self.live_key(campaign), self.fleet_live_key)]
        keys = [self.rate_key, *claims, *(key for key, _ in uncounted), *live_keys]
        args: list = [max_cps, successes * INCREASE_SHARE * max_cps, len(claims), len(uncounted)]
        args += ["a"] * len(accepted) + ["d"] * len(released)
        args += [member for _, member in uncounted]
        # One member per pair of keys, at the position of the pair's first key.
        args += [m for call_id in ended for m in (call_id, "")]
        self.round_trips += 1
        self.calls["finish"] += 1
        self._finish(keys=keys, args=args)

    def live_calls(self, campaign_id: str | None = None) -> int:
        """Live calls now (expired leases not counted), the fleet's or one campaign's."""
        key = self.live_key(campaign_id) if campaign_id else self.fleet_live_key
        return int(self._redis.zcount(key, f"({_redis_now_us(self._redis)}", "+inf"))

    def slow_down(self, *, max_cps: float) -> float | None:
        """Halves the shared rate unless another worker did so within the cool-down."""
        self.round_trips += 1
        self.calls["slow_down"] += 1
        reply = self._slow_down(
            keys=[self.rate_key, f"{self._tag}:cooldown"],
            args=[max_cps, DECREASE_FACTOR, max(0.5, max_cps * MIN_RATE_SHARE), COOL_DOWN_MS],
        )
        return float(reply) if reply else None

    def effective_cps(self, max_cps: float) -> float:
        value = self._redis.get(self.rate_key)
        return min(max_cps, float(value)) if value else max_cps


def _redis_now_us(client) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


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
