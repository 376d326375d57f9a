-- Apply one batch exactly once: insert its pending predictions and run its writes.
--
-- KEYS[1]  done marker of the batch        mlops:{m}:done:<batch>
-- KEYS[2]  pending-table meta              mlops:{m}:pending:meta
-- KEYS[3]  pending-table bucket prefix     mlops:{m}:pending:
-- KEYS[4]  model counters                  mlops:{m}:counters
-- KEYS[5]  the batch's journal entry       mlops:{m}:journal:<batch>
-- KEYS[6]  the journal index               mlops:{m}:journal
-- ARGV[1]  seconds to keep the done marker
-- ARGV[2]  the batch id
-- ARGV[3]  P, the number of pending predictions; then P (field, value) pairs
-- then     the writes, each as: argc, command, arg...
--
-- Returns {applied (1, or 0 when the batch was already applied), duplicate ids}.
-- The journal entry goes either way: a replayed copy of an applied batch has done its job.
-- Every key written shares the model's hash tag, so this runs on Redis Cluster too.
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[2])
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then
  return {0, 0}
end

local level, split, count = lh_state(KEYS[2])
local pending = tonumber(ARGV[3])
local duplicates = 0
local i = 4
for _ = 1, pending do
  local field, value = ARGV[i], ARGV[i + 1]
  i = i + 2
  local bucket = KEYS[3] .. lh_bucket(lh_hash(field), level, split)
  if redis.call('HSETNX', bucket, field, value) == 1 then
    count = count + 1
    while count > LOAD * (N0 * (2 ^ level) + split) do
      level, split = lh_split(KEYS[3], level, split)
    end
  else
    duplicates = duplicates + 1
  end
end
if pending > 0 then
  redis.call('HSET', KEYS[2], 'level', level, 'split', split, 'count', count)
end
if duplicates > 0 then
  redis.call('HINCRBY', KEYS[4], 'duplicate_ids', duplicates)
end

local n = #ARGV
while i <= n do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
return {1, duplicates}
