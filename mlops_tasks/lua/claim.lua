-- Claim the pending predictions that a batch of labels refers to, exactly once.
--
-- KEYS[1]  done marker of the label batch  mlops:{m}:done:<batch>
-- KEYS[2]  claim record of the batch       mlops:{m}:claim:<batch>
-- KEYS[3]  pending-table meta              mlops:{m}:pending:meta
-- KEYS[4]  pending-table bucket prefix     mlops:{m}:pending:
-- ARGV[1]  seconds to keep the claim record
-- ARGV[2..] the 8-byte digests of the labels' prediction ids
--
-- Returns false when the batch was already applied; else a flat list of (label index, packed
-- prediction) for every label whose prediction was found. The claim is recorded, so a worker
-- that dies before applying the batch leaves it for the redelivered message to apply.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('LRANGE', KEYS[2], 1, -1)
end

local level, split, count = lh_state(KEYS[3])
local found = {}
for i = 2, #ARGV do
  local field = ARGV[i]
  local bucket = KEYS[4] .. lh_bucket(lh_hash(field), level, split)
  local value = redis.call('HGET', bucket, field)
  if value then
    redis.call('HDEL', bucket, field)
    count = count - 1
    found[#found + 1] = tostring(i - 2)
    found[#found + 1] = value
  end
end
redis.call('HSET', KEYS[3], 'count', count)
redis.call('RPUSH', KEYS[2], 'claim')
for i = 1, #found, 2000 do
  redis.call('RPUSH', KEYS[2], unpack(found, i, math.min(i + 1999, #found)))
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return found
