-- Count a model's kept tuning runs by whether they were applied (server/activity.py, for
-- mlops_tuning_runs_total). Read-only; run only when the history changed.
--
-- KEYS[1]  the model's tuning history      mlops:{m}:tuning:history (LIST of runs as JSON)
--
-- Returns {applied, not applied}.
local applied, other = 0, 0
for _, run in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, decoded = pcall(cjson.decode, run)
  if ok and type(decoded) == 'table' and decoded['applied'] == true then
    applied = applied + 1
  else
    other = other + 1
  end
end
return {applied, other}
