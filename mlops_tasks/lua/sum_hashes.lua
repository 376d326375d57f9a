-- Sum every field of a model's window buckets on the server: all the counters of a time window
-- (confusion counts, score sums, latency and label-delay histograms) in one reply, however
-- many buckets it spans. Used by WindowReader.bucket_series (the dashboard of `mlops serve`).
--
-- KEYS   the bucket hashes (keys.agg) of one model: one hash tag, so one slot on a cluster
-- ARGV   none
--
-- Returns {field, sum, field, sum, ...} in the order the fields were first seen, each sum as
-- a string: integer counters exactly, float sums with 17 significant digits (they read back
-- as the same double). Buckets are added in KEYS' order, as WindowReader.sum_buckets adds them.
local sums, order = {}, {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local field = flat[i]
    if sums[field] == nil then
      sums[field] = 0
      order[#order + 1] = field
    end
    sums[field] = sums[field] + (tonumber(flat[i + 1]) or 0)
  end
end
local out = {}
for _, field in ipairs(order) do
  out[#out + 1] = field
  out[#out + 1] = string.format('%.17g', sums[field])
end
return out
