-- A page of runs, newest first (run ids are time-ordered). ARGV: 6 flow ('' any), 7 status
-- ('' any), 8 before this run id ('' from the newest), 9 limit.
-- Returns {cursor or '', record JSON...}. Index entries of expired runs are removed here.
local flow, status, limit = ARGV[6], ARGV[7], tonumber(ARGV[9])
local zk = P .. 'runs'
if flow ~= '' then
  zk = P .. 'runs:f:' .. flow
elseif status ~= '' then
  zk = P .. 'runs:s:' .. status
end
local max = '+'
if ARGV[8] ~= '' then
  max = '(' .. ARGV[8]
end
local items, last, examined = {}, '', 0
while examined < 10000 do
  local ids = redis.call('ZREVRANGEBYLEX', zk, max, '-', 'LIMIT', 0, 200)
  if #ids == 0 then
    return {'', unpack(items)}
  end
  for _, rid in ipairs(ids) do
    examined = examined + 1
    max = '(' .. rid
    local f = redis.call('HMGET', P .. 'run:' .. rid, 'status', 'rec')
    if not f[1] then
      redis.call('ZREM', zk, rid)
    elseif status == '' or f[1] == status then
      if #items >= limit then
        return {last, unpack(items)}
      end
      items[#items + 1] = f[2]
      last = rid
    end
  end
end
return {string.sub(max, 2), unpack(items)}
