-- A model's window buckets on the server, in one reply however many buckets a window spans:
-- some fields of each bucket, and every field of all of them summed (confusion counts, score
-- sums, latency and label-delay histograms). Used by WindowReader.bucket_series (the dashboard
-- of `mlops serve`: a week is 169 hour buckets per model).
--
-- KEYS   the bucket hashes (keys.agg) of one model, in time order: one hash tag, so one slot
--        on a cluster
-- ARGV   the fields wanted of each bucket
--
-- Returns {rows, sums}:
--   rows  #KEYS * #ARGV values, bucket after bucket, each as stored ("" for a field the
--         bucket lacks, or a bucket that does not exist)
--   sums  {field, sum, field, sum, ...} in the order the fields were first seen, each sum a
--         string: integer counters exactly, float sums with 17 significant digits (they read
--         back as the same double); buckets are added in KEYS' order, as
--         WindowReader.sum_buckets adds them
local want = {}  -- field -> its place in a row
for j = 1, #ARGV do want[ARGV[j]] = j end
local rows, sums, order = {}, {}, {}
for k, key in ipairs(KEYS) do
  local base = (k - 1) * #ARGV
  for j = 1, #ARGV do rows[base + j] = '' end
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    local j = want[field]
    if j then rows[base + j] = value end
    local sum = sums[field]
    if sum == nil then
      sum = 0
      order[#order + 1] = field
    end
    sums[field] = sum + (tonumber(value) or 0)
  end
end
local summed = {}
for _, field in ipairs(order) do
  summed[#summed + 1] = field
  summed[#summed + 1] = string.format('%.17g', sums[field])
end
return {rows, summed}
