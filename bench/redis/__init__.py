"""Benchmarks on Redis: flowtide's Redis backend next to Redis-based peers, one Redis server."""
