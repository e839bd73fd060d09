-- Lease up to ``limit`` jobs (see _claim.lua). ARGV[6..]: claim_jobs's arguments.
return claim_jobs(6)
