-- Delete a job that is not active. ARGV: 6 job id. Returns 1 deleted, 0 none, -1 active.
local state = redis.call('HGET', P .. 'job:' .. ARGV[6], 'state')
if not state then
  return 0
end
if state == 'active' then
  return -1
end
forget_job(ARGV[6])
return 1
