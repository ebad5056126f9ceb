"""The admission script as it was before campaign gates stopped moving the global schedule, kept
only so `bench_fairness.py` can run it side by side with today's. Not product code.

Its waits: DIAL in microseconds, DEFER (slot too far) and IN_FLIGHT in milliseconds. It runs with
today's SLACK, so a comparison shows the script's difference alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

from dialer_worker.admission import SLACK, Admission, AdmissionRequest, Decision, RedisPacer, Reservation  # noqa: E402

OLD_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_cps = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local claim_ttl = tonumber(ARGV[4])
local slack = tonumber(ARGV[5])
local hold_ms = tonumber(ARGV[6])
if hold_ms > 0 then redis.call('SET', KEYS[3], '1', 'NX', 'PX', hold_ms) end
local held_us = redis.call('PTTL', KEYS[3]) * 1000
local rate = tonumber(redis.call('GET', KEYS[2]) or max_cps)
if rate > max_cps then rate = max_cps end
local interval = (1 + slack) * 1000000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local ctats = {}
local out = {}
local n = (#KEYS - 3) / 2
for i = 1, n do
  local claim_key = KEYS[2 + 2 * i]
  local ckey = KEYS[3 + 2 * i]
  local ccps = tonumber(ARGV[6 + i])
  local claim = redis.call('GET', claim_key)
  if claim == 'a' then
    out[#out + 1] = 2; out[#out + 1] = 0
  elseif claim and tonumber(claim) > now then
    out[#out + 1] = 3; out[#out + 1] = math.floor((tonumber(claim) - now) / 1000)
  elseif held_us > 0 then
    out[#out + 1] = 1; out[#out + 1] = held_us
  else
    local slot = tat
    if ccps > 0 then
      local ctat = ctats[ckey] or tonumber(redis.call('GET', ckey) or 0)
      if ctat > slot then slot = ctat end
    end
    if slot - now > max_wait then
      out[#out + 1] = 1; out[#out + 1] = math.floor((slot - now) / 1000)
    else
      tat = slot + interval
      if ccps > 0 then ctats[ckey] = slot + (1 + slack) * 1000000 / ccps end
      redis.call('SET', claim_key, string.format('%d', slot + lease), 'PX', claim_ttl)
      out[#out + 1] = 0; out[#out + 1] = math.floor(slot - now)
    end
  end
end
if tat > now then
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
for k, v in pairs(ctats) do
  redis.call('SET', k, string.format('%d', v), 'PX', math.floor((v - now) / 1000) + 1000)
end
out[#out + 1] = math.floor(rate * 1000)
return out
"""


class OldRedisPacer(RedisPacer):
    """RedisPacer with the old script and the old ordering (tasks without a campaign maxCps first)."""

    def __init__(self, client, *, prefix: str, claim_ttl_seconds: int) -> None:
        super().__init__(client, prefix=prefix, claim_ttl_seconds=claim_ttl_seconds)
        self._reserve = client.register_script(OLD_RESERVE)

    def reserve(
        self,
        tasks: Sequence[AdmissionRequest],
        *,
        max_cps: float,
        max_wait_ms: int,
        lease_ms: int,
        hold_ms: int = 0,
        settle_ms: int = 0,  # the Dispatcher's; the old script knew no live calls
    ) -> Reservation:
        keys = [self.keys.tat, self.keys.rate, self.keys.hold]
        args: list = [max_cps, max(0, max_wait_ms) * 1000, lease_ms * 1000, self._claim_ttl_ms, SLACK, hold_ms]
        order = sorted(range(len(tasks)), key=lambda i: bool(tasks[i].campaign_max_cps))
        for i in order:
            task = tasks[i]  # the old script knew no other gate
            keys += [self.keys.claim(task.call_id), self.keys.campaign_tat(task.campaign_id)]
            args.append(task.campaign_max_cps or 0)
        self.round_trips += 1
        reply = self._reserve(keys=keys, args=args)
        decisions: list = [None] * len(tasks)
        for position, i in enumerate(order):
            decisions[i] = Admission(Decision(int(reply[2 * position])), int(reply[2 * position + 1]))
        return Reservation(decisions, int(reply[-1]) / 1000)
