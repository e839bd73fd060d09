"""What every backend's flowtide benchmark side shares: the app, a worker process, and the
client-side loops (one-by-one enqueue, bulk enqueue, run starts, single-job latency)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.peers._common import Child, Deadline, child_process, read_ready_time, wait_for
from flowtide import App, Config
from flowtide.registry import discover

WORKER_DESC = "1 worker process (flowtide worker, concurrency {c})"


def app(url: str) -> App:
    return App(Config(backend=url), registry=discover(["bench._flowtide_app"]))


@contextlib.contextmanager
def worker(
    tmp: Path, url: str, deadline: Deadline, concurrency: int | None = None
) -> Iterator[tuple[Child, float]]:
    """A `flowtide worker` child on ``url``; yields it and the time it became ready."""
    ready = tmp / "worker.ready"
    env = {} if concurrency is None else {"FLOWTIDE_WORKER_CONCURRENCY": str(concurrency)}
    with child_process("bench._flowtide_worker", [url, str(ready)], env, tmp / "w.log") as child:
        wait_for(ready.exists, deadline, "waiting for the flowtide worker to start", child)
        t_ready = read_ready_time(ready)
        assert t_ready is not None
        yield child, t_ready


async def enqueue_each(url: str, n: int) -> float:
    """Seconds to enqueue n no-op jobs, one awaited call at a time."""
    async with app(url) as opened:
        t0 = time.perf_counter()
        for i in range(n):
            await opened.enqueue("noop", i)
        return time.perf_counter() - t0


async def enqueue_bulk(url: str, n: int) -> float:
    """Seconds to enqueue n no-op jobs in one `enqueue_many` call."""
    async with app(url) as opened:
        t0 = time.perf_counter()
        await opened.enqueue_many("noop", list(range(n)))
        return time.perf_counter() - t0


async def job_latency(url: str, n: int, child: Child) -> list[float]:
    """Milliseconds from enqueueing one no-op job to seeing it completed, n times in turn."""
    out = []
    async with app(url) as opened:
        for i in range(n):
            t0 = time.perf_counter()
            job_id = await opened.enqueue("noop", i)
            while True:
                job = await opened.backend.get_job(job_id)
                if job is not None and job.state == "completed":
                    break
                await opened.backend.wait_for_change(0.05)
            out.append((time.perf_counter() - t0) * 1000.0)
            child.check_alive()
    return out


async def start_all(url: str, flow: str, inputs: list[Any]) -> None:
    """Start one run per input, concurrently."""
    import asyncio

    async with app(url) as opened:
        await asyncio.gather(*(opened.start(flow, value) for value in inputs))
