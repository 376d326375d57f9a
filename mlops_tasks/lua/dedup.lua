-- Duplicate detection of batches: a library prepended to ingest.lua and claim.lua.
--
-- A sequenced batch (id "<producer>.<seq>", seq counting from 1 per producer and model) is
-- remembered in one hash per producer and model, mlops:{m}:seen:<producer>:
--   w        every seq <= w has been applied, except the holes below
--   holes    the number of h: fields
--   a:<seq>  applied, above w (arrived ahead of an earlier batch)
--   h:<seq>  not applied yet, at or below w (the window slid past it; its batch was lost on the
--            way and comes back from the journal, or is still queued)
-- The window above w is DD_WINDOW seqs wide: a batch further ahead slides it, and each seq it
-- passes either was applied (its a: field goes) or becomes a hole. In steady traffic the hash
-- holds two fields; while batches overtake each other, at most DD_WINDOW more; plus one per batch
-- actually missing, at most DD_MAX_HOLES: a gap wider than what is left of that budget keeps its
-- newest seqs as holes and forgets the older ones (counted by ingest.lua: such a batch, if
-- it ever came back, would be taken as a duplicate). Memory grows with producers, not messages,
-- and no call loops more than DD_MAX_HOLES + DD_WINDOW times.
--
-- A producer we hold nothing of (new, or silent for longer than the hash's TTL) starts with its
-- window just below the first seq seen, and the DD_INIT_HOLES seqs below the window as holes:
-- a new producer's first batches may still be on their way, an old one's were applied long ago
-- (those holes simply expire with the hash).
--
-- A batch whose id carries no sequence (a label retry, a producer of its own) is remembered by a
-- marker key of its own, mlops:{m}:done:<batch>, kept for a while.
--
-- dd_applied tells whether a batch was applied before, writing nothing; dd_mark records an
-- applied batch (the caller runs it after every other write) and returns the gaps forgotten.
local DD_WINDOW = 256
local DD_MAX_HOLES = 8192
local DD_INIT_HOLES = 1024

local function dd_field(kind, seq)
  return kind .. string.format('%d', seq)
end

local function dd_applied(seen, marker, seq)
  if seq == nil then
    return redis.call('EXISTS', marker) == 1
  end
  local w = tonumber(redis.call('HGET', seen, 'w'))
  if w == nil then
    return false
  end
  if seq <= w then
    return redis.call('HEXISTS', seen, dd_field('h:', seq)) == 0
  end
  if seq <= w + DD_WINDOW then
    return redis.call('HEXISTS', seen, dd_field('a:', seq)) == 1
  end
  return false
end

local function dd_mark(seen, marker, seq, marker_ttl, seen_ttl)
  if seq == nil then
    redis.call('SET', marker, '1', 'EX', marker_ttl)
    return 0
  end
  local st = redis.call('HMGET', seen, 'w', 'holes')
  local w, holes = tonumber(st[1]), tonumber(st[2]) or 0
  local forgotten = 0
  if w == nil then
    w = math.max(0, seq - DD_WINDOW)
    for s = math.max(1, w - DD_INIT_HOLES + 1), w do
      redis.call('HSET', seen, dd_field('h:', s), '1')
      holes = holes + 1
    end
  end
  if seq <= w then
    holes = holes - redis.call('HDEL', seen, dd_field('h:', seq))
  else
    if seq > w + DD_WINDOW then
      local slid = seq - DD_WINDOW
      -- seqs above the budget's reach are forgotten; their a: fields (if any) still go
      local first = math.max(w + 1, slid - (DD_MAX_HOLES - holes) + 1)
      forgotten = first - (w + 1)
      for s = w + 1, math.min(first - 1, w + DD_WINDOW) do
        forgotten = forgotten - redis.call('HDEL', seen, dd_field('a:', s))
      end
      for s = first, slid do
        if redis.call('HDEL', seen, dd_field('a:', s)) == 0 then
          redis.call('HSET', seen, dd_field('h:', s), '1')
          holes = holes + 1
        end
      end
      w = slid
    end
    if seq == w + 1 then
      w = seq
      while redis.call('HDEL', seen, dd_field('a:', w + 1)) == 1 do
        w = w + 1
      end
    else
      redis.call('HSET', seen, dd_field('a:', seq), '1')
    end
  end
  redis.call('HSET', seen, 'w', string.format('%d', w), 'holes', holes)
  redis.call('EXPIRE', seen, seen_ttl)
  return forgotten
end
