-- Read a cached configuration and count the hit or miss in the same round trip
-- (registry/store.py).
--
-- KEYS[1]  the cached value                mlops:{m}:cache:<target>
-- KEYS[2]  the read-cache counters         mlops:{m}:stats:cache
-- ARGV[1]  the counter of hits             (keys.F_CACHE_HITS)
-- ARGV[2]  the counter of misses           (keys.F_CACHE_MISSES)
--
-- Returns the cached value, or nil on a miss.
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
else
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return value
