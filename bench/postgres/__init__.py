"""flowtide on its PostgreSQL backend, on the same workloads as the peers."""
