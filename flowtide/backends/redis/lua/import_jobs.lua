-- Insert jobs as they are (flowtide migrate). ARGV[6..]: each job's arguments (see
-- _import.lua). Returns the ids inserted.
local out = {}
local i = 6
while i <= #ARGV do
  local done, nxt = import_job(i)
  if done == 1 then
    out[#out + 1] = ARGV[i]
  end
  i = nxt
end
wake()
return out
