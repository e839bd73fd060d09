-- Give leased jobs back (graceful shutdown): waiting again, the attempt not counted.
-- ARGV: 6 worker, 7.. job ids.
local worker = ARGV[6]
for i = 7, #ARGV do
  local id = ARGV[i]
  local jk = P .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'state', 'worker', 'queue', 'priority', 'run_at', 'ord')
  if f[1] == 'active' and f[2] == worker then
    redis.call('ZREM', P .. 'active', id)
    redis.call('HSET', jk, 'state', 'waiting', 'worker', '', 'lease_until', '')
    redis.call('HINCRBY', jk, 'attempt', -1)
    count(f[3], 'active', -1)
    count(f[3], 'waiting', 1)
    schedule(jk, id, f[3], 'waiting', f[4], f[5], f[6])
  end
end
wake()
return 1
