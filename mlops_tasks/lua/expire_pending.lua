-- Remove expired predictions from one bucket of the pending-label table and count them, in one
-- atomic step (maintenance/cleanup.py). A label batch may have claimed some of them since they
-- were read: HDEL reports only what it removed, and only that is counted.
--
-- KEYS[1]  a pending-table bucket          mlops:{m}:pending:<n>
-- KEYS[2]  pending-table meta              mlops:{m}:pending:meta
-- KEYS[3]  model counters                  mlops:{m}:counters
-- ARGV[1]  the meta field counting the table's entries      (keys.F_PENDING_COUNT)
-- ARGV[2]  the counter of predictions expired unlabeled     (keys.F_EXPIRED_PENDING)
-- ARGV[3..] the fields (8-byte id digests) to remove
--
-- Returns how many were removed.
local gone = redis.call('HDEL', KEYS[1], unpack(ARGV, 3))
if gone > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], -gone)
  redis.call('HINCRBY', KEYS[3], ARGV[2], gone)
end
return gone
