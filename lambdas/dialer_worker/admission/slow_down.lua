-- Multiplicative decrease of the shared rate (RedisPacer.slow_down), at most once per cool-down
-- across the fleet. KEYS: rate, cool-down. ARGV: max_cps, factor, floor, cool-down ms.
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[4])) then
  local max_cps = tonumber(ARGV[1])
  local r = tonumber(redis.call('GET', KEYS[1]) or max_cps)
  if r > max_cps then r = max_cps end
  r = math.max(tonumber(ARGV[3]), r * tonumber(ARGV[2]))
  redis.call('SET', KEYS[1], tostring(r))
  return tostring(r)
end
return false
