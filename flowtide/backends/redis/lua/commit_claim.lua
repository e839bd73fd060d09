-- A commit, then, if it applied, a claim, in one call (a worker's group commit claiming for
-- the slots it frees). ARGV[6]: k, the index of the claim's first argument; ARGV[7..k-1]:
-- commit_ops's arguments; ARGV[k..]: claim_jobs's. Returns {commit's result, claimed rows}.
local k = tonumber(ARGV[6])
local res = commit_ops(7, k - 1)
if res.err then
  return res
end
if res[1] == 0 then
  return {res, {}}
end
return {res, claim_jobs(k)}
