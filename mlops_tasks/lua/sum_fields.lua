-- Sum fields over a model's window buckets on the server: one reply per model, not one per
-- minute bucket (61 for the last hour). Used by the Prometheus collector (server/metrics.py).
--
-- KEYS   the bucket hashes (keys.agg) of one model: one hash tag, so one slot on a cluster
-- ARGV   the fields to sum
--
-- Returns the sums, in ARGV's order, as strings.
local sums = {}
for j = 1, #ARGV do sums[j] = 0 end
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(ARGV))
  for j = 1, #ARGV do sums[j] = sums[j] + (tonumber(values[j]) or 0) end
end
for j = 1, #ARGV do sums[j] = string.format('%d', sums[j]) end
return sums
