-- Admission for one batch: every gate for every task, in one round trip (RedisPacer.reserve).
-- KEYS and ARGV are laid out by layout.py's pack_reserve, the one place that documents them:
-- the batch's keys and arguments first, then each task's, then the claims' epoch key.
-- The counts below and layout.py's must agree (tests/unit/dialer/test_admission_script.py).
local LAYOUT = {batch_keys = 7, task_keys = 5, batch_args = 14, task_args = 4}
-- What each task comes to: layout.py's Decision, compared with this table by the same test.
local DECISION = {DIAL = 0, DEFER = 1, DUPLICATE = 2, IN_FLIGHT = 3, RECIPIENT_LIMIT = 4, LIVE_CALLS = 5, RESTORING = 6}
-- The restore hold as this batch found it: layout.py's RestoreState, compared by the same test.
local RESTORE = {NONE = 0, HOLDING = 1, STARTED = 2, TIMED_OUT = 3}
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
local pace_ttl_s = tonumber(ARGV[10])
local settle_us = tonumber(ARGV[11])
local restore_hold_ms = tonumber(ARGV[12])
local restored_epoch = tonumber(ARGV[13])
-- The least time between two of this batch's own slots (0: none): one container's calls spread
-- over its CPU periods, the slots between them left to the other containers (see `ahead`).
local spread_us = tonumber(ARGV[14])
local tat_key, rate_key, hold_key, ahead_key, fleet_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local restoring_key, restored_key = KEYS[6], KEYS[7]
-- The claims' epoch: set once, never expires. A Redis that comes back without it (a failover
-- that lost writes) has lost the claims too; the dialers compare it with the one they saw.
local epoch_key = KEYS[#KEYS]
local epoch = redis.call('GET', epoch_key)
local restore = RESTORE.NONE
if not epoch then
  epoch = string.format('%d', now)
  redis.call('SET', epoch_key, epoch)
  -- Lost claims and recipient counts come back from the ledger: every container holds dialing
  -- from now until it says they are back (restored_key) or restore_hold_ms has passed. Kept as
  -- long as a claim would live: after that there is nothing left to restore. Only a dialer that
  -- saw an epoch before (restored_epoch > 0) calls it a loss: a new stack's first batch does not hold.
  if restore_hold_ms > 0 and restored_epoch > 0 then
    redis.call('SET', restoring_key, string.format('%d', now), 'PX', claim_ttl_ms)
    restore = RESTORE.STARTED
  end
end
-- restored_key is the one of the epoch this dialer last saw (restored_epoch): it tells only if
-- that is this epoch; a dialer that has not seen it yet holds one batch more.
local restoring_us = 0
local hold_from = restore_hold_ms > 0 and tonumber(redis.call('GET', restoring_key))
if hold_from then
  if restored_epoch == tonumber(epoch) and redis.call('EXISTS', restored_key) == 1 then
    redis.call('DEL', restoring_key)
  elseif now - hold_from >= restore_hold_ms * 1000 then
    -- The bound: dialing goes on as before restores existed, and this batch alone says so.
    redis.call('DEL', restoring_key)
    restore = RESTORE.TIMED_OUT
  else
    restoring_us = hold_from + restore_hold_ms * 1000 - now
    if restore == RESTORE.NONE then restore = RESTORE.HOLDING end
  end
end
if hold_ms > 0 then redis.call('SET', hold_key, '1', 'NX', 'PX', hold_ms) end
local held_us = redis.call('PTTL', hold_key) * 1000
local rate = tonumber(redis.call('GET', rate_key) or max_cps)
if rate > max_cps then rate = max_cps end
local interval = math.ceil((1 + slack) * 1000000 / rate)
local tat = tonumber(redis.call('GET', tat_key) or 0)
if tat < now then tat = now end
-- Global slots already taken at or after tat out of order (a campaign's rate or a batch's spread
-- put them past the first free slot), ascending.
redis.call('ZREMRANGEBYSCORE', ahead_key, '-inf', '(' .. string.format('%d', tat - interval))
local ahead = {}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', ahead_key, string.format('%d', tat - interval), '+inf')) do
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
-- Counted for the claim's lease only (the score is the window's start when the lease ends):
-- `finish` makes the count of a call that went out last the whole window, so a call that never
-- did (its invocation died) stops counting with its lease. GT: a lasting count stays lasting.
local function count_recipient(rkey, claim_key, slot)
  if recipient_limit <= 0 then return end
  redis.call('ZADD', rkey, 'GT', string.format('%d', slot + lease_us - recipient_window_us), claim_key)
  redis.call('PEXPIRE', rkey, math.floor((slot - now + recipient_window_us) / 1000) + 1000)
end
-- Gate 3, live calls: a call is live from its slot until its call event removes it, the dialer
-- ends it (it did not go out, or the worker had it already), or its lease ends (the score);
-- expired members go first. Admission's entry lasts until the batch's last slot plus settle_us
-- (by then the dialer has had every reply and run `finish`, or died); `finish` extends it to a
-- call's lease only for a call the worker took (or may have), so an invocation that dies leaves
-- nothing live for longer than that. GT: an entry already there with a longer lease keeps it.
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
local admitted_live, last_slot = {}, now
local function count_live(lkey, call_id, slot)
  local ends = slot + settle_us
  admitted_live[#admitted_live + 1] = {lkey, call_id}
  if slot > last_slot then last_slot = slot end
  for _, k in ipairs({lkey, fleet_key}) do
    live_count(k)
    live[k] = live[k] + redis.call('ZADD', k, 'GT', string.format('%d', ends), call_id)
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
-- This batch's latest slot so far (nil: none yet).
local last_own = nil
-- Each task's reply starts with its decision and its wait in microseconds (see Decision).
local function decide(code, wait_us)
  out[#out + 1] = code; out[#out + 1] = wait_us
end
local n = (#KEYS - LAYOUT.batch_keys - 1) / LAYOUT.task_keys
for i = 1, n do
  local k = LAYOUT.batch_keys + LAYOUT.task_keys * (i - 1)
  local claim_key, ckey, rkey, lkey, pkey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local a = LAYOUT.batch_args + LAYOUT.task_args * (i - 1)
  local ccps = tonumber(ARGV[a + 1])
  local campaign_cap = tonumber(ARGV[a + 2])
  local min_rate = tonumber(ARGV[a + 3])
  local call_id = ARGV[a + 4]
  -- Every gate is judged before this task takes anything, so a task refused by a later gate
  -- leaves no claim, no recipient count and no live call behind.
  -- Gate 1, the claim: never dial a callId twice.
  local claim = redis.call('GET', claim_key)
  if claim == 'a' then
    decide(DECISION.DUPLICATE, 0)
  elseif claim and tonumber(claim) > now then
    decide(DECISION.IN_FLIGHT, tonumber(claim) - now)
  elseif restoring_us > 0 then
    -- Before the other gates: the recipient counts may not be back yet either.
    decide(DECISION.RESTORING, restoring_us)
  elseif recipient_full(rkey) then
    decide(DECISION.RECIPIENT_LIMIT, 0)
  elseif live_full(lkey, campaign_cap) then
    decide(DECISION.LIVE_CALLS, 0)
  elseif held_us > 0 then
    decide(DECISION.DEFER, held_us)
  else
    local crate = campaign_rate(pkey, ccps, min_rate)
    local ctat = 0
    if crate > 0 then ctat = ctats[ckey] or tonumber(redis.call('GET', ckey) or 0) end
    -- The earliest slot the campaign's rate and the batch's spread allow, on the global grid.
    local earliest = tat
    if ctat > earliest then earliest = ctat end
    if spread_us > 0 and last_own and last_own + spread_us > earliest then earliest = last_own + spread_us end
    local first = free_from(tat)
    local slot = first
    if earliest > tat then slot = free_from(tat + math.ceil((earliest - tat) / interval) * interval) end
    if slot - now > max_wait_us then
      decide(DECISION.DEFER, slot - now)
    else
      -- Gate 5, the global rate, then the commit: slot, claim, recipient count, live call. A
      -- slot past the first free one leaves a gap for others: it is kept in `ahead`.
      if slot > first then
        local at = #ahead + 1
        while at > 1 and ahead[at - 1] > slot do at = at - 1 end
        table.insert(ahead, at, slot)
        added[#added + 1] = slot
      else
        tat = slot + interval
      end
      last_own = slot
      if crate > 0 then ctats[ckey] = slot + math.ceil((1 + slack) * 1000000 / crate) end
      redis.call('SET', claim_key, string.format('%d', slot + lease_us), 'PX', claim_ttl_ms)
      count_recipient(rkey, claim_key, slot)
      count_live(lkey, call_id, slot)
      decide(DECISION.DIAL, slot - now)
    end
  end
  out[#out + 1] = live_count(lkey)
end
-- Every entry admitted here lasts until the batch has settled (see count_live).
for _, entry in ipairs(admitted_live) do
  local ends = last_slot + settle_us
  for _, k in ipairs({entry[1], fleet_key}) do
    redis.call('ZADD', k, 'GT', string.format('%d', ends), entry[2])
    if redis.call('PTTL', k) < math.floor((ends - now) / 1000) then
      redis.call('PEXPIRE', k, math.floor((ends - now) / 1000) + 1000)
    end
  end
end
-- Right after the tasks, the restore hold's state (layout.py reads it there).
out[#out + 1] = restore
if tat > now then
  redis.call('SET', tat_key, string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
for _, s in ipairs(added) do
  redis.call('ZADD', ahead_key, s, string.format('%d', s))
end
if #ahead > 0 then
  redis.call('PEXPIRE', ahead_key, math.floor((ahead[#ahead] + interval - now) / 1000) + 1000)
end
for key, v in pairs(ctats) do
  redis.call('SET', key, string.format('%d', v), 'PX', math.floor((v - now) / 1000) + 1000)
end
-- After the tasks: the shared rate (thousandths), the fleet's live calls, the epoch, and the
-- script's clock (µs), so the dialer can place each slot on its own clock (Dispatcher).
out[#out + 1] = math.floor(rate * 1000)
out[#out + 1] = live_count(fleet_key)
out[#out + 1] = epoch
out[#out + 1] = string.format('%d', now)
return out
