"""flowtide on its Redis backend, on the same workloads as the Redis peers.

Every workload gets its own key prefix on the benchmark's Redis and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from bench import _flowtide_harness as h
from bench.peers._common import (
    Deadline,
    PeerResult,
    latency_result,
    rate,
    temp_dir,
    wait_for,
)

NAME = "flowtide"
CONCURRENCY = 100


def _url(base: str, prefix: str) -> str:
    return f"{base}?prefix={prefix}"


def _counter(base: str, prefix: str, key: str, field: str | None) -> Any:
    r = redis.Redis.from_url(base)

    def count() -> int:
        if field is None:
            return int(r.zcard(prefix + key))
        return int(r.hget(prefix + key, field) or 0)

    return count


def _run_enqueue(base: str, prefix: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    elapsed = asyncio.run(h.enqueue_each(_url(base, prefix), n))
    note = f"App.enqueue awaited once per job (one script call each); {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_concurrent(
    base: str, prefix: str, tmp: Path, n: int, deadline: Deadline
) -> PeerResult:
    producers = 100

    async def go() -> float:
        async with h.app(_url(base, prefix)) as app:

            async def producer(start: int) -> None:
                for i in range(start, n, producers):
                    await app.enqueue("noop", i)

            t0 = time.perf_counter()
            await asyncio.gather(*(producer(p) for p in range(producers)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    note = (
        f"App.enqueue from {producers} concurrent tasks of one process (concurrent calls are "
        f"coalesced into shared script calls); {elapsed:.3f} s"
    )
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_bulk(base: str, prefix: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> float:
        async with h.app(_url(base, prefix)) as app:
            t0 = time.perf_counter()
            await app.enqueue_many("noop", list(range(n)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    note = f"App.enqueue_many: all {n} in one script call; {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_drain(base: str, prefix: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, prefix)
    asyncio.run(h.enqueue_each(url, n))
    done = _counter(base, prefix, "q:bench:counts", "completed")
    with h.worker(tmp, url, deadline, CONCURRENCY) as (child, t_ready):
        wait_for(lambda: done() >= n, deadline, f"draining {n} jobs", child)
        t_done = time.time()
    elapsed = t_done - t_ready
    note = (
        h.WORKER_DESC.format(c=CONCURRENCY) + f"; worker start to last completion {elapsed:.3f} s"
    )
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_chain3(base: str, prefix: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, prefix)
    done = _counter(base, prefix, "runs:s:completed", None)
    with h.worker(tmp, url, deadline, CONCURRENCY) as (child, _):
        t0 = time.perf_counter()
        asyncio.run(h.start_all(url, "chain3", list(range(n))))
        wait_for(lambda: done() >= n, deadline, f"waiting for {n} runs", child)
        elapsed = time.perf_counter() - t0
    note = h.WORKER_DESC.format(c=CONCURRENCY) + f"; step1 -> step2 -> step3; {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": note}


def _run_latency(base: str, prefix: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, prefix)
    with h.worker(tmp, url, deadline, CONCURRENCY) as (child, _):
        samples = asyncio.run(h.job_latency(url, n, child))
    note = "enqueue of one no-op job until the client sees it completed (pub/sub wake-up)"
    return latency_result(samples, note)


_RUNNERS = {
    "enqueue": _run_enqueue,
    "enqueue_concurrent": _run_enqueue_concurrent,
    "enqueue_bulk": _run_enqueue_bulk,
    "drain": _run_drain,
    "chain3": _run_chain3,
    "latency": _run_latency,
}


def run(workload: str, n: int, base: str) -> PeerResult | None:
    runner = _RUNNERS.get(workload)
    if runner is None:
        return None
    prefix = f"bench-flowtide-{uuid.uuid4().hex[:8]}:"
    try:
        with temp_dir(f"{NAME}-redis-{workload}") as tmp:
            return runner(base, prefix, tmp, n, Deadline(f"{NAME}:{workload}"))
    finally:
        r = redis.Redis.from_url(base)
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            r.unlink(*keys[i : i + 1000])
