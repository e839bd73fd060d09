"""Redis-based peers of flowtide's Redis benchmark (``python -m bench.redis``).

Each ``<name>_peer.py`` exposes ``NAME`` and ``run(workload, n, url) -> dict | None`` like
``bench/peers``; it uses its own Redis database number on the benchmark server, flushes it before
and after, and runs its worker as one child process stopped by pid. The runner starts every peer
in a subprocess (``python -m bench.redis_peers.<name>_peer WORKLOAD N URL``) so that peers with
conflicting ``redis`` requirements can live in a second virtualenv (see bench/README.md).
"""
