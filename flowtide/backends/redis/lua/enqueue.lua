-- Insert jobs, deduplicated by id and by key. ARGV[6..]: ten fields per job (see
-- backend._job_args). Returns the id that stands for each job.
local out = {}
for i = 6, #ARGV, 10 do
  out[#out + 1] = insert_job(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
end
wake()
return out
