-- A page of a collection's live records with their expiry (flowtide migrate). ARGV: 6
-- collection, 7 limit, 8 the first ZRANGEBYLEX bound ('-' or '(' .. after key).
-- Returns {key, value, expires_at or '', ...} in key order.
local c, limit, start = ARGV[6], tonumber(ARGV[7]), ARGV[8]
rec_purge(c, PURGE_MAX)
local hk, xk, ek = rec_keys(c)
local out = {}
local found = 0
while found < limit do
  local keys = redis.call('ZRANGEBYLEX', xk, start, '+', 'LIMIT', 0, math.min(limit - found, 1000))
  if #keys == 0 then
    break
  end
  local values = redis.call('HMGET', hk, unpack(keys))
  for j, key in ipairs(keys) do
    local exp = redis.call('ZSCORE', ek, key)
    if values[j] and not (exp and tonumber(exp) <= TSN) then
      out[#out + 1] = key
      out[#out + 1] = values[j]
      out[#out + 1] = exp or ''
      found = found + 1
    else
      rec_remove(c, key) -- expired (beyond this call's purge), or an index entry astray
    end
  end
  start = '(' .. keys[#keys]
end
return out
