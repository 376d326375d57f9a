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
-- actually missing. Memory grows with producers, not with messages.
--
-- A batch whose id carries no sequence (a label retry, a producer of its own) is remembered by a
-- marker key of its own, mlops:{m}:done:<batch>, kept for a while.
--
-- dd_status returns 0 (new), 1 (applied before) or 2 (so far ahead that its holes would pass
-- DD_MAX_HOLES: refused, the caller dead-letters it under a marker). It writes nothing.
-- dd_mark records an applied batch; the caller runs it last, after every other write.
local DD_WINDOW = 256
local DD_MAX_HOLES = 65536

local function dd_field(kind, seq)
  return kind .. string.format('%d', seq)
end

local function dd_state(seen)
  local st = redis.call('HMGET', seen, 'w', 'holes')
  return tonumber(st[1]), tonumber(st[2]) or 0
end

-- A producer we hold nothing of (new, or silent for longer than the state's TTL) starts at
-- w = 0; when its seq is too far ahead to record the holes below it, everything older than the
-- window is taken as done (it was sent longer ago than any redelivery can come back).
local function dd_start(w, seq)
  if w ~= nil then return w end
  if seq - DD_WINDOW > DD_MAX_HOLES then return seq - DD_WINDOW - 1 end
  return 0
end

local function dd_status(seen, marker, seq)
  if seq == nil then
    return redis.call('EXISTS', marker)
  end
  local w, holes = dd_state(seen)
  w = dd_start(w, seq)
  if seq <= w then
    if redis.call('HEXISTS', seen, dd_field('h:', seq)) == 1 then return 0 end
    return 1
  end
  if seq <= w + DD_WINDOW then
    return redis.call('HEXISTS', seen, dd_field('a:', seq))
  end
  if holes + (seq - DD_WINDOW - w) > DD_MAX_HOLES then return 2 end
  return 0
end

local function dd_mark(seen, marker, seq, marker_ttl, seen_ttl)
  if seq == nil then
    redis.call('SET', marker, '1', 'EX', marker_ttl)
    return
  end
  local w, holes = dd_state(seen)
  w = dd_start(w, seq)
  if seq <= w then
    holes = holes - redis.call('HDEL', seen, dd_field('h:', seq))
  else
    if seq > w + DD_WINDOW then
      local slid = seq - DD_WINDOW
      for s = w + 1, slid do
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
end
