-- Claim due timers: each goes to one caller, its due time pushed forward by the lease.
-- ARGV: 6 now, 7 limit, 8 new due. Returns {id, data, id, data...} in due order.
local due = redis.call('ZRANGEBYSCORE', P .. 'timers', '-inf', ARGV[6], 'LIMIT', 0,
  tonumber(ARGV[7]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', P .. 'timers', ARGV[8], id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', P .. 'timer', id) or '["", null]'
end
return out
