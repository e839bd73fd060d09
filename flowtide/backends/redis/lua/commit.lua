-- Apply decided transitions (see _commit.lua). ARGV[6..]: commit_ops's arguments.
return commit_ops(6, #ARGV)
