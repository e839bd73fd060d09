-- The record operations (see _records.lua). ARGV: 6 operation, 7 collection, then
--   get key                          -> the value (JSON), or nil
--   put key value expires only_new   -> nil; with only_new '1', the live value kept if any
--   del key                          -> 1 if a live record was deleted, else 0
--   add key amount expires           -> the counter's new value (a string)
--   list limit start reverse         -> {key, value, key, value...}; ``start`` is the first
--                                       ZRANGEBYLEX bound ('-' / '+' or '(' .. after key)
--   cols                             -> the collections holding live records (any order)
-- ``expires`` is epoch seconds, '' for never.
local op, c = ARGV[6], ARGV[7]

if op == 'cols' then
  local out = {}
  for _, col in ipairs(redis.call('SMEMBERS', P .. 'reccols')) do
    rec_purge(col, PURGE_MAX)
    local hk, _, ek = rec_keys(col)
    local n = redis.call('HLEN', hk)
    if n == 0 then
      redis.call('SREM', P .. 'reccols', col)
    elseif n > redis.call('ZCOUNT', ek, '-inf', TS) then
      out[#out + 1] = col
    end
  end
  return out
end

rec_purge(c, PURGE_MAX)
local hk, xk, ek = rec_keys(c)
if op == 'get' then
  return rec_get(c, ARGV[8])
elseif op == 'put' then
  local key = ARGV[8]
  if ARGV[11] == '1' then
    local have = rec_get(c, key)
    if have then
      return have
    end
  end
  rec_put(c, key, ARGV[9], ARGV[10])
  return false
elseif op == 'del' then
  if not rec_get(c, ARGV[8]) then
    return 0
  end
  return rec_remove(c, ARGV[8])
elseif op == 'add' then
  return rec_add(c, ARGV[8], ARGV[9], ARGV[10])
elseif op == 'list' then
  local limit, start, reverse = tonumber(ARGV[8]), ARGV[9], ARGV[10] == '1'
  local expiring = redis.call('EXISTS', ek) == 1
  local out = {}
  local found = 0
  while found < limit do
    local want = math.min(limit - found, 1000)
    local keys
    if reverse then
      keys = redis.call('ZREVRANGEBYLEX', xk, start, '-', 'LIMIT', 0, want)
    else
      keys = redis.call('ZRANGEBYLEX', xk, start, '+', 'LIMIT', 0, want)
    end
    if #keys == 0 then
      break
    end
    local values = redis.call('HMGET', hk, unpack(keys))
    for j, key in ipairs(keys) do
      if values[j] and not (expiring and rec_expired(ek, key)) then
        out[#out + 1] = key
        out[#out + 1] = values[j]
        found = found + 1
      else
        rec_remove(c, key) -- expired (beyond this call's purge), or an index entry astray
      end
    end
    start = '(' .. keys[#keys]
  end
  return out
end
return redis.error_reply('flowtide records: unknown operation ' .. tostring(op))
