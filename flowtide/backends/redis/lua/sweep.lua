-- Age-based retention, run every few seconds by one process (see backend._maybe_sweep).
-- ARGV: 6 completed jobs older than this are deleted, 7 failed/canceled jobs, 8 ended runs
-- (with their events, state and finished jobs); each an epoch-seconds cutoff ('' = keep).
-- Also removes expired records (of collections no operation touches, which would keep
-- them otherwise). Deletes at most 1,000 of each kind per call.
-- Returns {jobs deleted, runs deleted, records deleted}.
local jobs, runs, records = 0, 0, 0
for _, queue in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  for state, cutoff in pairs({completed = ARGV[6], failed = ARGV[7], canceled = ARGV[7]}) do
    if cutoff ~= '' then
      local zk = P .. 'q:' .. queue .. ':' .. state
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', zk, '-inf', cutoff, 'LIMIT', 0, 1000)) do
        forget_job(id)
        jobs = jobs + 1
      end
    end
  end
end
if ARGV[8] ~= '' then
  local ended = redis.call('ZRANGEBYSCORE', P .. 'runs:ended', '-inf', ARGV[8], 'LIMIT', 0, 1000)
  for _, rid in ipairs(ended) do
    local rk = P .. 'run:' .. rid
    local f = redis.call('HMGET', rk, 'status', 'flow')
    if f[1] then
      redis.call('ZREM', P .. 'runs', rid)
      redis.call('ZREM', P .. 'runs:f:' .. f[2], rid)
      redis.call('ZREM', P .. 'runs:s:' .. f[1], rid)
    end
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'rjobs:' .. rid)) do
      forget_job(id)
    end
    redis.call('DEL', rk, P .. 'ev:' .. rid, P .. 'st:' .. rid, P .. 'stx:' .. rid)
    if redis.call('SCARD', P .. 'rjobs:' .. rid) == 0 then
      redis.call('DEL', P .. 'rjobs:' .. rid)
    end
    redis.call('ZREM', P .. 'runs:ended', rid)
    runs = runs + 1
  end
end
for _, c in ipairs(redis.call('SMEMBERS', P .. 'reccols')) do
  if records >= 1000 then
    break
  end
  records = records + rec_purge(c, 1000 - records)
end
return {jobs, runs, records}
