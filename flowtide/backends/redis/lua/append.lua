-- Append events to a run without a version check (logs). ARGV: 6 run id, then pairs
-- (lifecycle flag, event suffix). Returns {flow as JSON, seq...}, or {} for an unknown run.
local rid = ARGV[6]
local flowj = redis.call('HGET', P .. 'run:' .. rid, 'flowj')
if not flowj then
  return {}
end
local out = {flowj}
for i = 7, #ARGV, 2 do
  out[#out + 1] = append_event(rid, ARGV[i], ARGV[i + 1])
end
wake()
return out
