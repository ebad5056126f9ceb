-- Settles one batch (RedisPacer.finish): marks or releases claims, makes the recipient counts of
-- calls that went out lasting and drops those of calls that did not, keeps, ends or drops each
-- admitted call's live entry, raises the shared rate. layout.py's pack_finish lays out KEYS and
-- ARGV; its docstring says what each position holds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_cps = tonumber(ARGV[1])
local increase = tonumber(ARGV[2])
local claims = tonumber(ARGV[3])
local uncounted = tonumber(ARGV[4])
local counted = tonumber(ARGV[5])
local call_lease_us = tonumber(ARGV[6])
local a0 = 6
for i = 1, claims do
  if ARGV[a0 + i] == 'a' then
    redis.call('SET', KEYS[1 + i], 'a', 'KEEPTTL')
  else
    redis.call('DEL', KEYS[1 + i])
  end
end
-- A released call did not go out: it no longer counts against its recipient.
local k0, m0 = 1 + claims, a0 + claims
for i = 1, uncounted do
  redis.call('ZREM', KEYS[k0 + i], ARGV[m0 + i])
end
-- The others did (or may have): admission counted them only for its lease; from now on they
-- count for the recipient's whole window. XX: never adds what a released count took away.
k0, m0 = k0 + uncounted, m0 + uncounted
for i = 1, counted do
  redis.call('ZADD', KEYS[k0 + i], 'XX', 'GT', string.format('%d', now), ARGV[m0 + i])
end
-- Live entries, a pair of keys (the campaign's, the fleet's) and three arguments each: what to
-- do, the callId, and a time. 'keep': the worker is (or may be) carrying the call, live for a
-- call's lease from its slot (the time; -1: from now) unless its event already ended it (XX);
-- 'end': it did
-- not go out; 'repeat' (a 409): the worker had it from an earlier attempt, so the entry admission
-- made for this one goes, and an entry that was there before (its score differs: admission never
-- lowers one) stays.
k0, m0 = k0 + counted, m0 + counted
local pairs_n = (#KEYS - k0) / 2
for j = 0, pairs_n - 1 do
  local action, member, score = ARGV[m0 + 3 * j + 1], ARGV[m0 + 3 * j + 2], ARGV[m0 + 3 * j + 3]
  for _, key in ipairs({KEYS[k0 + 2 * j + 1], KEYS[k0 + 2 * j + 2]}) do
    if action == 'keep' then
      local from = tonumber(score)
      if from < 0 then from = now end
      redis.call('ZADD', key, 'XX', string.format('%d', from + call_lease_us), member)
      if redis.call('PTTL', key) < math.floor(call_lease_us / 1000) then
        redis.call('PEXPIRE', key, math.floor(call_lease_us / 1000) + 1000)
      end
    elseif action == 'end' then
      redis.call('ZREM', key, member)
    else
      local was = redis.call('ZSCORE', key, member)
      if was and tonumber(was) == tonumber(score) then redis.call('ZREM', key, member) end
    end
  end
end
if increase > 0 then
  local r = tonumber(redis.call('GET', KEYS[1]) or max_cps) + increase
  if r >= max_cps then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], tostring(r)) end
end
return 1
