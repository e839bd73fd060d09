-- Records: small keyed collections of JSON values (triggers, fires, schedules, awaits).
-- Per collection c (see keys.py): rec:{c} hash key -> JSON value; recx:{c} sorted set of the
-- keys, all scores 0 (lexical order, for listing); rece:{c} sorted set key -> expires_at of
-- the records that expire. reccols is the set of collections whose rec:{c} exists.
-- A record whose expires_at <= now is absent: it is removed when met, and every operation on
-- a collection first removes up to PURGE_MAX of its expired records (so they never pile up).
local PURGE_MAX = 100

local function rec_keys(c)
  return P .. 'rec:' .. c, P .. 'recx:' .. c, P .. 'rece:' .. c
end

-- Remove a record (live or not); returns 1 if it existed, else 0.
local function rec_remove(c, key)
  local hk, xk, ek = rec_keys(c)
  local n = redis.call('HDEL', hk, key)
  redis.call('ZREM', xk, key)
  redis.call('ZREM', ek, key)
  if n == 1 and redis.call('EXISTS', hk) == 0 then
    redis.call('SREM', P .. 'reccols', c)
  end
  return n
end

-- Store a record (``value`` JSON; '' deletes it); ``expires`` '' = never.
local function rec_put(c, key, value, expires)
  if value == '' then
    return rec_remove(c, key)
  end
  local hk, xk, ek = rec_keys(c)
  if redis.call('HSET', hk, key, value) == 1 then
    redis.call('ZADD', xk, 0, key)
    redis.call('SADD', P .. 'reccols', c)
  end
  if expires == '' then
    redis.call('ZREM', ek, key)
  else
    redis.call('ZADD', ek, expires, key)
  end
  return 1
end

-- Remove up to ``max`` expired records of a collection; returns how many.
local function rec_purge(c, max)
  local hk, xk, ek = rec_keys(c)
  local gone = redis.call('ZRANGEBYSCORE', ek, '-inf', TS, 'LIMIT', 0, max)
  if #gone > 0 then
    redis.call('HDEL', hk, unpack(gone))
    redis.call('ZREM', xk, unpack(gone))
    redis.call('ZREM', ek, unpack(gone))
    if redis.call('EXISTS', hk) == 0 then
      redis.call('SREM', P .. 'reccols', c)
    end
  end
  return #gone
end

-- Whether a stored record has expired (``ek`` its collection's expiry set).
local function rec_expired(ek, key)
  local exp = redis.call('ZSCORE', ek, key)
  return exp and tonumber(exp) <= TSN
end

-- The live value of a record, or false (an expired one is removed).
local function rec_get(c, key)
  local hk, _, ek = rec_keys(c)
  local v = redis.call('HGET', hk, key)
  if v and rec_expired(ek, key) then
    rec_remove(c, key)
    return false
  end
  return v
end

-- Add ``amount`` to an integer record (absent or expired counts as 0; ``expires`` applies
-- when the counter is created); returns its new value (a string).
local function rec_add(c, key, amount, expires)
  if not rec_get(c, key) then
    if expires == '' or tonumber(expires) > TSN then
      rec_put(c, key, amount, expires)
    end
    return amount
  end
  local hk = P .. 'rec:' .. c
  redis.call('HINCRBY', hk, key, amount)
  return redis.call('HGET', hk, key) -- exact, where a Lua number could print as 1e+15
end
