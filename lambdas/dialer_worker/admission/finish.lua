-- Settles one batch (RedisPacer.finish): marks or releases claims, uncounts and ends the calls
-- that did not go out, raises the shared rate. layout.py's pack_finish lays out KEYS and ARGV.
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
