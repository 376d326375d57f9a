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
-- ARGV[5]  the counter of prediction ids already pending      (keys.F_DUPLICATE_IDS)
-- ARGV[6]  the counter of gaps forgotten (see dedup.lua)       (keys.F_GAPS_FORGOTTEN)
-- ARGV[7]  the counter of partly applied batches              (keys.F_PARTIAL_BATCHES)
-- ARGV[8]  T, the number of keys to type-check; then T (key, type) pairs
-- then     P, the number of pending predictions; then P (field, value) pairs
-- then     the writes, each as: argc, command, arg... (argc checked by the caller: unpack()
--          has a limit of a few thousand values). One write is not a Redis command:
--          'HIST', key, type, bins, entries increments a histogram held in a BITFIELD string of
--          `bins` counters of `type` (u32, i64) saturating: `entries` is 6 bytes per bin, the
--          bin's index (u16) and its increment (u32), little-endian (ingest/store.py
--          hist_entries). A new histogram is made at its full size first: grown by ascending
--          writes, Redis would over-allocate the string at each step (1.65x to 2x the bytes).
--
-- Returns {applied (1 or 0), duplicate ids, status, detail}: status 0 applied now; 1 applied
-- before (nothing written); 3 a key holds another type than the writes need (nothing written,
-- detail names it: the batch waits for the key to be repaired); 4 a write failed after others
-- were done (the batch is marked applied all the same, so a retry never counts anything twice;
-- detail is the error, counted in ARGV[7]).
-- Nothing is written before these checks, and the batch is marked applied after its writes.
-- The journal entry goes when the batch is applied now or was before.
-- Every key written shares the model's hash tag, so this runs on Redis Cluster too.
local seq = tonumber(ARGV[4])
if dd_applied(KEYS[2], KEYS[1], seq) then
  redis.call('DEL', KEYS[6])
  redis.call('ZREM', KEYS[7], ARGV[3])
  return {0, 0, 1}
end

local i = 9
for _ = 1, tonumber(ARGV[8]) do
  local key, want = ARGV[i], ARGV[i + 1]
  i = i + 2
  local have = redis.call('TYPE', key).ok
  if have ~= 'none' and have ~= want then
    return {0, 0, 3, key .. ' holds a ' .. have .. ', expected a ' .. want}
  end
end

local HIST_CHUNK = 500 -- bins per BITFIELD call (4 arguments each: within unpack()'s limit)

local function hist_incr(key, typ, bins, entries)
  local last = #entries
  if last % 6 ~= 0 then
    error('HIST ' .. key .. ': entries of ' .. last .. ' bytes, not a multiple of 6')
  end
  local width = typ == 'i64' and 64 or 32
  if redis.call('EXISTS', key) == 0 then
    redis.call('BITFIELD', key, 'SET', typ, (tonumber(bins) - 1) * width, 0)
  end
  local args, j, pos = {'OVERFLOW', 'SAT'}, 2, 1
  while pos <= last do
    local bin, count
    bin, count, pos = struct.unpack('<I2I4', entries, pos)
    -- a plain bit offset (bin * width): cheaper for Redis to take than '#' .. bin
    args[j + 1], args[j + 2], args[j + 3], args[j + 4] = 'INCRBY', typ, bin * width, count
    j = j + 4
    if j >= 4 * HIST_CHUNK then
      redis.call('BITFIELD', key, unpack(args, 1, j))
      j = 2
    end
  end
  if j > 2 then
    redis.call('BITFIELD', key, unpack(args, 1, j))
  end
end

local duplicates = 0
local ok, err = pcall(function()
  local level, split, count = lh_state(KEYS[3])
  local pending = tonumber(ARGV[i])
  i = i + 1
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
    redis.call('HINCRBY', KEYS[5], ARGV[5], duplicates)
  end
  local n = #ARGV
  while i <= n do
    local argc = tonumber(ARGV[i])
    if ARGV[i + 1] == 'HIST' then
      hist_incr(ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
    else
      redis.call(unpack(ARGV, i + 1, i + argc))
    end
    i = i + argc + 1
  end
end)

local forgotten = dd_mark(KEYS[2], KEYS[1], seq, ARGV[1], ARGV[2])
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[3])
if forgotten > 0 then
  redis.pcall('HINCRBY', KEYS[5], ARGV[6], forgotten)
end
if not ok then
  redis.pcall('HINCRBY', KEYS[5], ARGV[7], 1)
  local message = type(err) == 'table' and err.err or tostring(err)
  return {1, duplicates, 4, message}
end
return {1, duplicates, 0}
