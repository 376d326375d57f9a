-- The small integer of a model version in packed pending records, given on first use (store.py).
--
-- KEYS[1]  version -> index hash           mlops:{m}:vidx
-- ARGV[1]  the version
--
-- Returns the version's index: the one it has, or the next free one (the hash's length), set
-- in the same atomic step so two workers never give two versions the same index.
local i = redis.call('HGET', KEYS[1], ARGV[1])
if i then
  return tonumber(i)
end
i = redis.call('HLEN', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], i)
return i
