-- Import a run as it is (flowtide migrate), atomically. ARGV: 6 run id, 7 its last seq,
-- 8 number of events, then per event (lifecycle flag, event JSON), then the number of jobs
-- and each job's arguments (see _import.lua), then commit_ops's arguments (see _commit.lua):
-- no checks, the R operation that writes the run record, and S, T and K operations for its
-- state, timers and records. Returns 0 (nothing written) if the run exists, else 1.
local rid = ARGV[6]
local rk = P .. 'run:' .. rid
if redis.call('EXISTS', rk) == 1 then
  return 0
end
local first = 9
local i = first + 2 * tonumber(ARGV[8])
local jobs = tonumber(ARGV[i])
i = i + 1
for _ = 1, jobs do
  local _, nxt = import_job(i)
  i = nxt
end
commit_ops(i, #ARGV)
local ek = P .. 'ev:' .. rid
for j = first, first + 2 * tonumber(ARGV[8]) - 1, 2 do
  redis.call('RPUSH', ek, ARGV[j + 1])
  if ARGV[j] == '1' then
    local gid = redis.call('INCR', P .. 'gid')
    redis.call('XADD', P .. 'feed', 'MAXLEN', '~', FEED_MAX, gid .. '-1', 'e', ARGV[j + 1])
  end
end
redis.call('HSET', rk, 'seq', ARGV[7])
return 1
