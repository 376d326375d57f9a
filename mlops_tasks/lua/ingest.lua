-- Apply one batch exactly once: insert its pending predictions and run its writes.
--
-- KEYS[1]  done marker of the batch        mlops:{m}:done:<batch>   (unsequenced batches)
-- KEYS[2]  the producer's seen hash        mlops:{m}:seen:<producer> (sequenced batches)
-- KEYS[3]  pending-table meta              mlops:{m}:pending:meta
-- KEYS[4]  pending-table bucket prefix     mlops:{m}:pending:
-- KEYS[5]  model counters                  mlops:{m}:counters
-- KEYS[6]  the batch's journal entry       mlops:{m}:journal:<batch>
-- KEYS[7]  the journal index               mlops:{m}:journal
-- ARGV[1]  seconds to keep a done marker
-- ARGV[2]  seconds to keep a producer's seen hash after its last batch
-- ARGV[3]  the batch id
-- ARGV[4]  the batch's seq, or '' when its id has none
-- ARGV[5]  P, the number of pending predictions; then P (field, value) pairs
-- then     the writes, each as: argc, command, arg... (argc checked by the caller: unpack()
--          has a limit of a few thousand values)
--
-- Returns {applied (1 or 0), duplicate ids, status}: status 0 applied now, 1 applied before
-- (nothing written), 2 refused as too far ahead of its producer (nothing written).
-- Nothing is written before the duplicate check, and the batch is marked applied last, so a
-- write that fails leaves the batch to be applied again by its retry. The journal entry goes
-- when the batch is applied now or was before: a replayed copy has done its job.
-- Every key written shares the model's hash tag, so this runs on Redis Cluster too.
local seq = tonumber(ARGV[4])
local status = dd_status(KEYS[2], KEYS[1], seq)
if status ~= 0 then
  if status == 1 then
    redis.call('DEL', KEYS[6])
    redis.call('ZREM', KEYS[7], ARGV[3])
  end
  return {0, 0, status}
end

local level, split, count = lh_state(KEYS[3])
local pending = tonumber(ARGV[5])
local duplicates = 0
local i = 6
for _ = 1, pending do
  local field, value = ARGV[i], ARGV[i + 1]
  i = i + 2
  local bucket = KEYS[4] .. lh_bucket(lh_hash(field), level, split)
  if redis.call('HSETNX', bucket, field, value) == 1 then
    count = count + 1
    while count > LOAD * (N0 * (2 ^ level) + split) do
      level, split = lh_split(KEYS[4], level, split)
    end
  else
    duplicates = duplicates + 1
  end
end
if pending > 0 then
  redis.call('HSET', KEYS[3], 'level', level, 'split', split, 'count', count)
end
if duplicates > 0 then
  redis.call('HINCRBY', KEYS[5], 'duplicate_ids', duplicates)
end

local n = #ARGV
while i <= n do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end

dd_mark(KEYS[2], KEYS[1], seq, ARGV[1], ARGV[2])
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[3])
return {1, duplicates, 0}
