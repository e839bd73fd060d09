-- Extend the leases a worker holds. ARGV: 6 worker, 7 lease until, 8.. job ids.
local worker, untl = ARGV[6], ARGV[7]
local held = {}
for i = 8, #ARGV do
  local jk = P .. 'job:' .. ARGV[i]
  local f = redis.call('HMGET', jk, 'state', 'worker')
  if f[1] == 'active' and f[2] == worker then
    redis.call('HSET', jk, 'lease_until', untl)
    redis.call('ZADD', P .. 'active', untl, ARGV[i])
    held[#held + 1] = ARGV[i]
  end
end
return held
