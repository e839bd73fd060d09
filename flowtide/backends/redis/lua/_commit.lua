-- Apply a batch of decided transitions atomically, if what they were decided on still holds.
-- ARGV[i]: number of checks, then per check (kind, id, expected):
--   V run_id version   the run record's version is still this ('' = no such run)
--   G job_id attempt   the job is still active in this attempt (the attempt_of guard)
-- then operations up to ARGV[n], each a code and its fields:
--   R run_id version status flow flow_json completed_at record_json   write the run record
--   E run_id lifecycle suffix    append an event (see append_event)
--   J job_id state run_at error result reset    update a job
--   C run_id                     cancel the run's waiting and delayed jobs
--   Q (ten job fields)           insert a job, deduplicated
--   S scope key value expires    set state;  D scope key  delete state;  Z scope  clear scope
--   T timer_id due data          set a timer;  U timer_id  delete a timer
--   K collection key value expires   put a record (value '' deletes it; see _records.lua)
--   A collection key amount expires  add to an integer record (see rec_add)
-- Returns {0} on a failed check (nothing written), else {1, seq of each E operation...}.
local function commit_ops(i, n)
  local checks = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, checks do
    local kind, id, expected = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if kind == 'V' then
      if (redis.call('HGET', P .. 'run:' .. id, 'v') or '') ~= expected then
        return {0}
      end
    else
      local f = redis.call('HMGET', P .. 'job:' .. id, 'state', 'attempt')
      if f[1] ~= 'active' or f[2] ~= expected then
        return {0}
      end
    end
  end

  local TERMINAL = {completed = true, failed = true, canceled = true, stalled = true}
  local out = {1}
  while i <= n do
    local op = ARGV[i]
    if op == 'E' then
      out[#out + 1] = append_event(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      i = i + 4
    elseif op == 'J' then
      local id, state, run_at = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
      local jk = P .. 'job:' .. id
      local f = redis.call('HMGET', jk, 'state', 'queue', 'priority', 'ord')
      if f[1] then
        local old, queue = f[1], f[2]
        redis.call('HSET', jk, 'error', ARGV[i + 4], 'result', ARGV[i + 5])
        if ARGV[i + 6] == '1' then
          redis.call('HSET', jk, 'attempt', 0, 'reclaims', 0)
        end
        if state == 'waiting' or state == 'delayed' then
          unschedule(jk, id, queue, old)
          if run_at == '' then
            run_at = TS
          end
          state = 'waiting'
          if tonumber(run_at) > TSN then
            state = 'delayed'
          end
          redis.call('HSET', jk, 'state', state, 'run_at', run_at, 'finished_at', '',
            'worker', '', 'lease_until', '')
          count(queue, old, -1)
          count(queue, state, 1)
          schedule(jk, id, queue, state, f[3], run_at, f[4])
        else
          finish_job(jk, id, queue, old, state)
        end
      end
      i = i + 7
    elseif op == 'R' then
      local rid, status = ARGV[i + 1], ARGV[i + 3]
      local rk = P .. 'run:' .. rid
      local old = redis.call('HGET', rk, 'status')
      redis.call('HSET', rk, 'v', ARGV[i + 2], 'status', status, 'rec', ARGV[i + 7])
      if not old then
        redis.call('HSET', rk, 'flow', ARGV[i + 4], 'flowj', ARGV[i + 5], 'seq', 0)
        redis.call('ZADD', P .. 'runs', 0, rid)
        redis.call('ZADD', P .. 'runs:f:' .. ARGV[i + 4], 0, rid)
        redis.call('ZADD', P .. 'runs:s:' .. status, 0, rid)
      elseif old ~= status then
        redis.call('ZREM', P .. 'runs:s:' .. old, rid)
        redis.call('ZADD', P .. 'runs:s:' .. status, 0, rid)
      end
      if TERMINAL[status] and ARGV[i + 6] ~= '' then
        redis.call('ZADD', P .. 'runs:ended', ARGV[i + 6], rid)
      end
      i = i + 8
    elseif op == 'C' then
      for _, id in ipairs(redis.call('SMEMBERS', P .. 'rjobs:' .. ARGV[i + 1])) do
        local jk = P .. 'job:' .. id
        local f = redis.call('HMGET', jk, 'state', 'queue')
        if f[1] == 'waiting' or f[1] == 'delayed' then
          finish_job(jk, id, f[2], f[1], 'canceled')
        end
      end
      i = i + 2
    elseif op == 'Q' then
      insert_job(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
        ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], ARGV[i + 10])
      i = i + 11
    elseif op == 'S' then
      redis.call('HSET', P .. 'st:' .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      if ARGV[i + 4] == '' then
        redis.call('HDEL', P .. 'stx:' .. ARGV[i + 1], ARGV[i + 2])
      else
        redis.call('HSET', P .. 'stx:' .. ARGV[i + 1], ARGV[i + 2], ARGV[i + 4])
      end
      i = i + 5
    elseif op == 'D' then
      redis.call('HDEL', P .. 'st:' .. ARGV[i + 1], ARGV[i + 2])
      redis.call('HDEL', P .. 'stx:' .. ARGV[i + 1], ARGV[i + 2])
      i = i + 3
    elseif op == 'Z' then
      redis.call('DEL', P .. 'st:' .. ARGV[i + 1], P .. 'stx:' .. ARGV[i + 1])
      i = i + 2
    elseif op == 'T' then
      redis.call('ZADD', P .. 'timers', ARGV[i + 2], ARGV[i + 1])
      redis.call('HSET', P .. 'timer', ARGV[i + 1], ARGV[i + 3])
      i = i + 4
    elseif op == 'U' then
      redis.call('ZREM', P .. 'timers', ARGV[i + 1])
      redis.call('HDEL', P .. 'timer', ARGV[i + 1])
      i = i + 2
    elseif op == 'K' then
      rec_put(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
      i = i + 5
    elseif op == 'A' then
      rec_add(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
      i = i + 5
    else
      return redis.error_reply('flowtide commit: unknown operation ' .. tostring(op))
    end
  end
  wake()
  return out
end
