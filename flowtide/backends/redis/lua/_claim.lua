-- Lease up to ``limit`` jobs: move due delayed jobs to their ready sets, reclaim expired
-- leases, then take ready jobs (highest priority, then due longest), appending step.started
-- (after step.retrying for a reclaimed job) to their runs. Each row is the job's fields, then,
-- for a step job, its run's version and record (false when the run is gone).
-- Its arguments start at ARGV[i]: worker, lease until, limit, ts as a JSON string, lease-lost
-- message as JSON, number of queues (-1: every queue), the queues, the number of excluded,
-- the excluded.
local function claim_jobs(i)
  local worker, untl, limit = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local tsj, lostj = ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local nq = tonumber(ARGV[i])
  i = i + 1
  local wanted = nil
  if nq >= 0 then
    wanted = {}
    for _ = 1, nq do
      wanted[ARGV[i]] = true
      i = i + 1
    end
  end
  local excluded = {}
  for _ = 1, tonumber(ARGV[i]) do
    i = i + 1
    excluded[ARGV[i]] = true
  end
  local paused = {}
  for _, q in ipairs(redis.call('SMEMBERS', P .. 'paused')) do
    paused[q] = true
  end
  local function eligible(q)
    return (wanted == nil or wanted[q]) and not excluded[q] and not paused[q]
  end

  -- due delayed jobs become waiting
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', TS, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', P .. 'delayed', id)
    local jk = P .. 'job:' .. id
    local f = redis.call('HMGET', jk, 'state', 'queue', 'priority', 'run_at', 'ord')
    if f[1] == 'delayed' then
      redis.call('HSET', jk, 'state', 'waiting')
      count(f[2], 'delayed', -1)
      count(f[2], 'waiting', 1)
      schedule(jk, id, f[2], 'waiting', f[3], f[4], f[5])
    end
  end

  local out = {}
  local function step_event(run_id, kind, step, attempt, data)
    append_event(run_id, '1', '"ts":' .. tsj .. ',"type":"' .. kind .. '","run_id":' ..
      cjson.encode(run_id) .. ',"step":' .. cjson.encode(step) .. ',"attempt":' .. attempt ..
      ',"data":' .. data .. '}')
  end
  local function take(id, reclaimed)
    local jk = P .. 'job:' .. id
    local f = redis.call('HMGET', jk, 'queue', 'name', 'run_id', 'flow', 'attempt', 'priority',
      'run_at', 'created_at', 'key', 'input', 'reclaims')
    local attempt = tonumber(f[5]) + 1
    local reclaims = tonumber(f[11])
    if reclaimed then
      reclaims = reclaims + 1
    else
      redis.call('HDEL', jk, 'mem')
      count(f[1], 'waiting', -1)
      count(f[1], 'active', 1)
    end
    redis.call('HSET', jk, 'state', 'active', 'attempt', attempt, 'reclaims', reclaims,
      'worker', worker, 'lease_until', untl)
    redis.call('ZADD', P .. 'active', untl, id)
    if f[3] ~= '' then
      if reclaimed then
        step_event(f[3], 'step.retrying', f[2], attempt - 1,
          '{"error":{"type":"LeaseExpired","message":' .. lostj .. '},"next_attempt":' ..
          attempt .. '}')
      end
      step_event(f[3], 'step.started', f[2], attempt, 'null')
    end
    local row = {id, f[1], f[2], f[3], f[4], attempt, f[6], f[7], f[8], f[9], f[10], reclaims}
    if f[3] ~= '' then
      -- the run record as of this claim: the worker decides the job's outcome on it without
      -- loading it again (the commit still checks that the version holds)
      local r = redis.call('HMGET', P .. 'run:' .. f[3], 'v', 'rec')
      row[13], row[14] = r[1], r[2]
    end
    out[#out + 1] = row
  end

  -- expired leases
  local expired = redis.call('ZRANGEBYSCORE', P .. 'active', '-inf', '(' .. TS, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    if #out >= limit then
      break
    end
    local q = redis.call('HGET', P .. 'job:' .. id, 'queue')
    if not q then
      redis.call('ZREM', P .. 'active', id)
    elseif eligible(q) then
      take(id, true)
    end
  end

  -- ready jobs
  local left = limit - #out
  if left > 0 then
    local queues = {}
    local names = wanted
    if names == nil then
      names = {}
      for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
        names[q] = true
      end
    end
    for q, _ in pairs(names) do
      if eligible(q) then
        queues[#queues + 1] = q
      end
    end
    if #queues == 1 then
      local popped = redis.call('ZPOPMIN', P .. 'q:' .. queues[1] .. ':ready', left)
      for j = 1, #popped, 2 do
        take(string.sub(popped[j], MEMBER_HEAD), false)
      end
    elseif #queues > 1 then
      local cands = {}
      for _, q in ipairs(queues) do
        for _, m in ipairs(redis.call('ZRANGE', P .. 'q:' .. q .. ':ready', 0, left - 1)) do
          cands[#cands + 1] = {m, q}
        end
      end
      table.sort(cands, function(a, b) return a[1] < b[1] end)
      for j = 1, math.min(left, #cands) do
        redis.call('ZREM', P .. 'q:' .. cands[j][2] .. ':ready', cands[j][1])
        take(string.sub(cands[j][1], MEMBER_HEAD), false)
      end
    end
  end
  return out
end
