"""The call events' effects in Redis, one script call per batch: each call leaves its campaign's
and the fleet's live sets, its outcome enters the campaign's window, and the campaign's pace
factor follows the answer-rate rule (`pace.py`, the same rule in Python). A callId counts once,
whatever the messageId of its copy: a SET NX per callId, kept for `seen_ttl_s`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from call_events.events import CallEvent
from shared.live_calls import (
    PACE_DECREASE,
    PACE_FLOOR,
    PACE_INCREASE,
    PACE_STATE_TTL_S,
    campaign_live_key,
    fleet_live_key,
    outcomes_key,
    pace_key,
    seen_key,
)

# A repeated event is recognised this long: the call-events queue keeps a message 4 days.
SEEN_TTL_S = 4 * 86_400

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local min_samples = tonumber(ARGV[2])
local cool_down_us = tonumber(ARGV[3])
local seen_ttl_s = tonumber(ARGV[4])
local pace_ttl_s = tonumber(ARGV[5])
local floor, decrease, increase = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local fleet_key = KEYS[1]
local per_event = 4
local n = (#KEYS - 1) / per_event
local out = {}
local campaigns, order = {}, {}
-- One event: counted once per callId; the call is no longer live; its outcome joins the window.
local function record(lkey, okey, skey, call_id, outcome)
  if not redis.call('SET', skey, '1', 'NX', 'EX', seen_ttl_s) then return 0 end
  redis.call('ZREM', lkey, call_id)
  redis.call('ZREM', fleet_key, call_id)
  redis.call('LPUSH', okey, outcome)
  redis.call('LTRIM', okey, 0, window - 1)
  redis.call('EXPIRE', okey, pace_ttl_s)
  return 1
end
local function round(x) return math.floor(x * 10000 + 0.5) / 10000 end
-- The answer-rate rule (call_events/pace.py): halve under minAnswerRate with enough samples, climb
-- back at or over it; at most one change per cool-down; no minAnswerRate, never slower than 1.
local function repace(okey, pkey)
  local outcomes = redis.call('LRANGE', okey, 0, -1)
  local answered = 0
  for _, o in ipairs(outcomes) do
    if o == 'answered' or o == 'machine' then answered = answered + 1 end
  end
  local state = redis.call('HMGET', pkey, 'factor', 'changed_at', 'min_rate')
  local factor = tonumber(state[1] or 1)
  local changed_at = tonumber(state[2] or -1)
  local min_rate = nil
  if state[3] then min_rate = tonumber(state[3]) end
  local samples = #outcomes
  if min_rate == nil then
    if factor < 1 then redis.call('HDEL', pkey, 'factor') end
    return samples, answered, 1
  end
  if samples == 0 or (changed_at >= 0 and now - changed_at < cool_down_us) then
    return samples, answered, factor
  end
  local new = factor
  if answered / samples < min_rate then
    if samples >= min_samples and factor > floor then new = math.max(floor, round(factor * decrease)) end
  elseif factor < 1 then
    new = math.min(1, round(factor + increase))
  end
  if new ~= factor then
    if new >= 1 then redis.call('HDEL', pkey, 'factor') else redis.call('HSET', pkey, 'factor', tostring(new)) end
    redis.call('HSET', pkey, 'changed_at', string.format('%d', now))
    redis.call('EXPIRE', pkey, pace_ttl_s)
  end
  return samples, answered, new
end
for i = 1, n do
  local base = 1 + per_event * (i - 1)
  local lkey, okey, pkey, skey = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  out[#out + 1] = record(lkey, okey, skey, ARGV[8 + 2 * i - 1], ARGV[8 + 2 * i])
  if campaigns[pkey] == nil then
    campaigns[pkey] = true
    order[#order + 1] = {lkey, okey, pkey}
  end
end
local function live(k)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', string.format('%d', now))
  return redis.call('ZCARD', k)
end
for _, c in ipairs(order) do
  local samples, answered, factor = repace(c[2], c[3])
  out[#out + 1] = samples
  out[#out + 1] = answered
  out[#out + 1] = math.floor(factor * 1000000 + 0.5)
  out[#out + 1] = live(c[1])
end
out[#out + 1] = live(fleet_key)
return out
"""


@dataclass(frozen=True)
class CampaignState:
    """A campaign after the batch: its window, answer rate, pace factor and live calls."""

    samples: int
    answered: int
    pace_factor: float
    live_calls: int

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.samples if self.samples else None


@dataclass
class LoopResult:
    counted: list[CallEvent] = field(default_factory=list)
    duplicates: list[CallEvent] = field(default_factory=list)
    campaigns: dict[str, CampaignState] = field(default_factory=dict)
    fleet_live: int = 0


class CallLoop:
    def __init__(
        self,
        client,
        *,
        prefix: str,
        window: int,
        min_samples: int,
        cool_down_seconds: float,
        seen_ttl_s: int = SEEN_TTL_S,
    ) -> None:
        self._prefix = prefix
        self._args = [
            window,
            min_samples,
            int(cool_down_seconds * 1_000_000),
            seen_ttl_s,
            PACE_STATE_TTL_S,
            PACE_FLOOR,
            PACE_DECREASE,
            PACE_INCREASE,
        ]
        self._script = client.register_script(_RECORD)
        self.round_trips = 0

    def record(self, events: Sequence[CallEvent]) -> LoopResult:
        """One round trip for the whole batch; Redis errors propagate (the batch is retried)."""
        result = LoopResult()
        if not events:
            return result
        p = self._prefix
        keys = [fleet_live_key(p)]
        args: list = list(self._args)
        for e in events:
            keys += [campaign_live_key(p, e.campaign_id), outcomes_key(p, e.campaign_id), pace_key(p, e.campaign_id)]
            keys.append(seen_key(p, e.call_id))
            args += [e.call_id, e.outcome]
        self.round_trips += 1
        reply = [int(x) for x in self._script(keys=keys, args=args)]
        for event, counted in zip(events, reply, strict=False):
            (result.counted if counted else result.duplicates).append(event)
        campaigns = list(dict.fromkeys(e.campaign_id for e in events))
        rest = reply[len(events) :]
        for k, campaign in enumerate(campaigns):
            samples, answered, factor, live = rest[4 * k : 4 * k + 4]
            result.campaigns[campaign] = CampaignState(samples, answered, factor / 1_000_000, live)
        result.fleet_live = rest[-1]
        return result
