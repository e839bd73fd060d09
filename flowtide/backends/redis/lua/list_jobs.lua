-- A page of a queue's jobs, newest first. ARGV: 6 queue, 7 state ('' any), 8 before this
-- ord ('' from the newest), 9 limit. Returns {cursor or '', job hash as a flat list...}.
-- A filtered page looks at 10,000 jobs at most and then returns what it found with a cursor.
local zk = P .. 'q:' .. ARGV[6] .. ':all'
local state, limit = ARGV[7], tonumber(ARGV[9])
local max = '+inf'
if ARGV[8] ~= '' then
  max = '(' .. ARGV[8]
end
local items, last, examined = {}, '', 0
while examined < 10000 do
  local ids = redis.call('ZREVRANGEBYSCORE', zk, max, '-inf', 'WITHSCORES', 'LIMIT', 0, 200)
  if #ids == 0 then
    return {'', unpack(items)}
  end
  for j = 1, #ids, 2 do
    examined = examined + 1
    max = '(' .. ids[j + 1]
    local jk = P .. 'job:' .. ids[j]
    local st = redis.call('HGET', jk, 'state')
    if st and (state == '' or st == state) then
      if #items >= limit then
        return {last, unpack(items)}
      end
      local h = redis.call('HGETALL', jk)
      h[#h + 1] = 'id'
      h[#h + 1] = ids[j]
      items[#items + 1] = h
      last = ids[j + 1]
    end
  end
end
return {string.sub(max, 2), unpack(items)}
