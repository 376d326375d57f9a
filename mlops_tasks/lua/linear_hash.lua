-- Linear hashing over Redis hashes: the table of predictions awaiting their label.
--
-- Keys (all share the model's hash tag):
--   <meta>          HASH  level, split, count
--   <prefix><n>     HASH  field (8-byte digest of the prediction id) -> packed record
--
-- The meta fields are this library's own state, written here, in ingest.lua and claim.lua;
-- Python only reads and decrements "count", by the name keys.F_PENDING_COUNT (keep the two equal).
--
-- The table starts with N0 buckets and splits one bucket each time the average load passes
-- LOAD, so every bucket stays small enough for Redis's compact listpack encoding (default limit
-- 128 entries) and memory per entry stays near the size of the field and value themselves.
local N0 = 16
local LOAD = 40

local function lh_hash(field)
  local a, b, c, d, e, f = string.byte(field, 1, 6)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

local function lh_state(meta)
  local st = redis.call('HMGET', meta, 'level', 'split', 'count')
  return tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or 0
end

local function lh_bucket(h, level, split)
  local n = N0 * (2 ^ level)
  local b = h % n
  if b < split then b = h % (2 * n) end
  return string.format('%d', b)
end

local function lh_split(prefix, level, split)
  local n = N0 * (2 ^ level)
  local src = prefix .. string.format('%d', split)
  local dst = prefix .. string.format('%d', split + n)
  local entries = redis.call('HGETALL', src)
  for i = 1, #entries, 2 do
    local f = entries[i]
    if lh_hash(f) % (2 * n) ~= split then
      redis.call('HSET', dst, f, entries[i + 1])
      redis.call('HDEL', src, f)
    end
  end
  split = split + 1
  if split >= n then
    level = level + 1
    split = 0
  end
  return level, split
end
