-- Release a job's lock on a model, only if this run still holds it (locks.py).
--
-- KEYS[1]  the lock                        mlops:{m}:lock:<job>
-- ARGV[1]  the token this run set as the lock's value
--
-- Returns 1 when the lock was released, 0 when it had expired or another run holds it now
-- (a run that outlived the lock's TTL must not release its successor's lock).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
