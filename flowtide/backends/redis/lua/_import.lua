-- Importing jobs as they are (flowtide migrate). A job's arguments, from ARGV[i]: id, queue,
-- name, run_id, flow, state, attempt, reclaims, priority, run_at, created_at, finished_at,
-- key, worker, lease_until ('' for none in string and time fields), input, result, error
-- (JSON), then the number of its state values and (key, value JSON, expires or '') for each
-- (the scope job:{id}). Returns 1 if the job was written (0 if a job with its id exists, or it
-- is unfinished and an unfinished job of its queue holds its key), and the index after its
-- arguments.
local function import_job(i)
  local id, queue, run_id, state, key = ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 5],
    ARGV[i + 12]
  local nstate = tonumber(ARGV[i + 18])
  local nxt = i + 19 + 3 * nstate
  local jk = P .. 'job:' .. id
  if redis.call('EXISTS', jk) == 1 then
    return 0, nxt
  end
  local kk = nil
  if key ~= '' and UNFINISHED[state] then
    kk = P .. 'key:' .. queue .. ':' .. key
    local other = redis.call('GET', kk)
    if other then
      local st = redis.call('HGET', P .. 'job:' .. other, 'state')
      if st and UNFINISHED[st] then
        return 0, nxt
      end
    end
  end
  local priority, run_at, finished_at, lease_until = ARGV[i + 8], ARGV[i + 9], ARGV[i + 11],
    ARGV[i + 14]
  local ord = redis.call('INCR', P .. 'seq')
  redis.call('HSET', jk, 'queue', queue, 'name', ARGV[i + 2], 'run_id', run_id,
    'flow', ARGV[i + 4], 'state', state, 'attempt', ARGV[i + 6], 'reclaims', ARGV[i + 7],
    'priority', priority, 'run_at', run_at, 'created_at', ARGV[i + 10],
    'finished_at', finished_at, 'key', key, 'worker', ARGV[i + 13], 'lease_until', lease_until,
    'input', ARGV[i + 15], 'result', ARGV[i + 16], 'error', ARGV[i + 17], 'ord', ord)
  if kk then
    redis.call('SET', kk, id)
  end
  redis.call('SADD', P .. 'queues', queue)
  count(queue, state, 1)
  redis.call('ZADD', P .. 'q:' .. queue .. ':all', ord, id)
  if run_id ~= '' then
    redis.call('SADD', P .. 'rjobs:' .. run_id, id)
  end
  local sk = 'job:' .. id
  for j = i + 19, nxt - 1, 3 do
    redis.call('HSET', P .. 'st:' .. sk, ARGV[j], ARGV[j + 1])
    if ARGV[j + 2] ~= '' then
      redis.call('HSET', P .. 'stx:' .. sk, ARGV[j], ARGV[j + 2])
    end
  end
  if state == 'active' then
    local untl = lease_until
    if untl == '' then
      untl = 0 -- no lease: reclaimed by the next claim
    end
    redis.call('ZADD', P .. 'active', untl, id)
  elseif FINISHED[state] then
    local at = finished_at
    if at == '' then
      at = TS
    end
    redis.call('ZADD', P .. 'q:' .. queue .. ':' .. state, at, id)
    trim(queue, state)
  else
    schedule(jk, id, queue, state, priority, run_at, ord)
  end
  return 1, nxt
end
