"""Helpers shared by the Redis peers: their databases, worker children and the CLI entry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bench.peers._common import (
    Child,
    Deadline,
    PeerResult,
    child_process,
    read_ready_time,
    wait_for,
)

DEFAULT_URL = "redis://127.0.0.1:6379"
READY_ENV = "BENCH_READY_FILE"
DB_URL_ENV = "BENCH_REDIS_URL"  # the peer's own database, e.g. redis://127.0.0.1:6379/3
CONCURRENCY = 100  # for peers with an async worker (the flowtide worker runs with 100 too)


def db_url(base: str, db: int) -> str:
    """``redis://host:port[/n]`` -> ``redis://host:port/db``."""
    head, _, tail = base.rstrip("/").rpartition("/")
    return f"{head if tail.isdigit() else base.rstrip('/')}/{db}"


def flush(url: str) -> None:
    """Empty the peer's own database (never the flowtide one: each peer has its number)."""
    import redis

    r = redis.Redis.from_url(url)
    try:
        r.flushdb()
    finally:
        r.close()


def announce_ready() -> None:
    """Called by a worker child once it is ready to take jobs: write time.time() atomically."""
    path = os.environ.get(READY_ENV)
    if not path:
        return
    tmp = Path(path + ".tmp")
    tmp.write_text(repr(time.time()))
    tmp.replace(path)


@contextlib.contextmanager
def worker(
    module: str,
    args: list[str],
    url: str,
    tmp: Path,
    deadline: Deadline,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[Child, float]]:
    """Start ``python -m module *args`` (one process), wait for its ready file; stop by pid."""
    ready = tmp / "worker.ready"
    full = {READY_ENV: str(ready), DB_URL_ENV: url, **(env or {})}
    with child_process(module, args, full, tmp / "worker.log") as child:
        wait_for(ready.exists, deadline, f"waiting for the {module} worker to start", child)
        t_ready = read_ready_time(ready)
        assert t_ready is not None
        yield child, t_ready


async def wait_async(
    predicate: Callable[[], Awaitable[bool]],
    deadline: Deadline,
    what: str,
    child: Child | None = None,
    interval: float = 0.005,
) -> None:
    while not await predicate():
        if child is not None:
            child.check_alive()
        deadline.check(what)
        await asyncio.sleep(interval)


async def gather_bounded(
    n: int, producers: int, call: Callable[[int], Awaitable[Any]], deadline: Deadline
) -> None:
    """Call ``call(i)`` for i in range(n) from ``producers`` concurrent tasks."""

    async def producer(start: int) -> None:
        for i in range(start, n, producers):
            await call(i)
            if i % 1000 < producers:
                deadline.check("enqueueing")

    await asyncio.gather(*(producer(p) for p in range(producers)))


def cli(run: Callable[[str, int, str], PeerResult | None]) -> None:
    """``python -m bench.redis_peers.X_peer WORKLOAD N [URL]``: print the result as JSON."""
    workload, n = sys.argv[1], int(sys.argv[2])
    url = sys.argv[3] if len(sys.argv) > 3 else DEFAULT_URL
    result = run(workload, n, url)
    print(json.dumps(result))
