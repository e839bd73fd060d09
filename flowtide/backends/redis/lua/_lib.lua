-- Shared helpers, prepended to every script by flowtide/backends/redis/_scripts.py.
-- Common arguments: ARGV[1] key prefix, ARGV[2] now (epoch seconds), ARGV[3] feed length,
-- ARGV[4] completed jobs kept per queue, ARGV[5] failed/canceled jobs kept per queue
-- (negative: no limit). A script's own arguments start at ARGV[6].
-- Keys are built from the prefix (see keys.py): flowtide runs on one Redis, not a cluster.
local P = ARGV[1]
local TS = ARGV[2]
local TSN = tonumber(TS)
local FEED_MAX = ARGV[3]
local KEEP_DONE = tonumber(ARGV[4])
local KEEP_FAILED = tonumber(ARGV[5])
local FINISHED = {completed = true, failed = true, canceled = true}
local UNFINISHED = {waiting = true, delayed = true, active = true}

local function count(queue, state, n)
  redis.call('HINCRBY', P .. 'q:' .. queue .. ':counts', state, n)
end

-- The member of a queue's ready set: all scores are 0, so members sort by bytes, which
-- gives highest priority first, then the job due longest (run_at), then the oldest (ord).
local function ready_member(priority, run_at, ord, id)
  local p = 2147483647 - tonumber(priority)
  local due = math.floor(tonumber(run_at) * 1000000)
  return string.format('%010d%017d%012d', p, due, tonumber(ord)) .. id
end
local MEMBER_HEAD = 40 -- the job id starts at this byte of a ready member

local function schedule(jk, id, queue, state, priority, run_at, ord)
  if state == 'delayed' then
    redis.call('ZADD', P .. 'delayed', run_at, id)
  else
    local m = ready_member(priority, run_at, ord, id)
    redis.call('ZADD', P .. 'q:' .. queue .. ':ready', 0, m)
    redis.call('HSET', jk, 'mem', m)
  end
end

-- Take a job out of the index of its current state.
local function unschedule(jk, id, queue, state)
  if state == 'active' then
    redis.call('ZREM', P .. 'active', id)
  elseif state == 'delayed' then
    redis.call('ZREM', P .. 'delayed', id)
  elseif state == 'waiting' then
    local m = redis.call('HGET', jk, 'mem')
    if m then
      redis.call('ZREM', P .. 'q:' .. queue .. ':ready', m)
      redis.call('HDEL', jk, 'mem')
    end
  elseif FINISHED[state] then
    redis.call('ZREM', P .. 'q:' .. queue .. ':' .. state, id)
  end
end

local function insert_job(id, queue, name, run_id, flow, priority, run_at, created_at, key, input)
  local jk = P .. 'job:' .. id
  if redis.call('EXISTS', jk) == 1 then
    return id
  end
  local kk = nil
  if key ~= '' then
    kk = P .. 'key:' .. queue .. ':' .. key
    local other = redis.call('GET', kk)
    if other then
      local st = redis.call('HGET', P .. 'job:' .. other, 'state')
      if st and UNFINISHED[st] then
        return other
      end
    end
  end
  local ord = redis.call('INCR', P .. 'seq')
  local state = 'waiting'
  if tonumber(run_at) > TSN then
    state = 'delayed'
  end
  redis.call('HSET', jk, 'queue', queue, 'name', name, 'run_id', run_id, 'flow', flow,
    'state', state, 'attempt', 0, 'reclaims', 0, 'priority', priority, 'run_at', run_at,
    'created_at', created_at, 'key', key, 'input', input, 'ord', ord)
  if kk then
    redis.call('SET', kk, id)
  end
  redis.call('SADD', P .. 'queues', queue)
  count(queue, state, 1)
  redis.call('ZADD', P .. 'q:' .. queue .. ':all', ord, id)
  if run_id ~= '' then
    redis.call('SADD', P .. 'rjobs:' .. run_id, id)
  end
  schedule(jk, id, queue, state, priority, run_at, ord)
  return id
end

-- Remove every trace of a job that is not active (deletion and retention).
local function forget_job(id)
  local jk = P .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'state', 'queue', 'key', 'run_id')
  if not f[1] or f[1] == 'active' then
    return
  end
  unschedule(jk, id, f[2], f[1])
  count(f[2], f[1], -1)
  redis.call('ZREM', P .. 'q:' .. f[2] .. ':all', id)
  if f[3] ~= '' then
    local kk = P .. 'key:' .. f[2] .. ':' .. f[3]
    if redis.call('GET', kk) == id then
      redis.call('DEL', kk)
    end
  end
  if f[4] ~= '' then
    redis.call('SREM', P .. 'rjobs:' .. f[4], id)
  end
  redis.call('DEL', jk, P .. 'st:' .. id, P .. 'stx:' .. id)
end

-- Keep at most KEEP_DONE completed / KEEP_FAILED failed or canceled jobs of a queue.
local function trim(queue, state)
  local keep = KEEP_FAILED
  if state == 'completed' then
    keep = KEEP_DONE
  end
  if keep < 0 then
    return
  end
  local zk = P .. 'q:' .. queue .. ':' .. state
  local n = redis.call('ZCARD', zk) - keep
  if n > 0 then
    for _, id in ipairs(redis.call('ZRANGE', zk, 0, n - 1)) do
      forget_job(id)
    end
  end
end

-- Finish a job (completed, failed, canceled) that is in state ``old``.
local function finish_job(jk, id, queue, old, state)
  unschedule(jk, id, queue, old)
  redis.call('HSET', jk, 'state', state, 'finished_at', TS, 'worker', '', 'lease_until', '')
  redis.call('ZADD', P .. 'q:' .. queue .. ':' .. state, TSN, id)
  count(queue, old, -1)
  count(queue, state, 1)
  if state == 'completed' then
    -- per-minute completion counter (GET /api/queues throughput), kept three minutes
    local mk = P .. 'q:' .. queue .. ':done:' .. math.floor(TSN / 60)
    if redis.call('INCR', mk) == 1 then
      redis.call('EXPIRE', mk, 180) -- from the minute's first completion: outlives the next
    end
  end
  trim(queue, state)
end

-- Append one event to a run. ``suffix`` is the event's JSON object without its opening
-- brace and without seq, id and flow, which are filled in here. Returns the seq (0: no run).
local function append_event(rid, lifecycle, suffix)
  local rk = P .. 'run:' .. rid
  local flowj = redis.call('HGET', rk, 'flowj')
  if not flowj then
    return 0
  end
  local seq = redis.call('HINCRBY', rk, 'seq', 1)
  local body = '{"seq":' .. seq .. ',"id":' .. cjson.encode(rid .. ':' .. seq) ..
    ',"flow":' .. flowj .. ',' .. suffix
  redis.call('RPUSH', P .. 'ev:' .. rid, body)
  if lifecycle == '1' then
    local gid = redis.call('INCR', P .. 'gid')
    redis.call('XADD', P .. 'feed', 'MAXLEN', '~', FEED_MAX, gid .. '-1', 'e', body)
  end
  return seq
end

local function wake()
  redis.call('PUBLISH', P .. 'wake', '1')
end
