"""saq peer: ``await queue.enqueue("noop", i=...)``; one ``saq`` worker (concurrency 100).

saq has no batch enqueue and no job chaining. Drain completion: saq keeps unfinished jobs in
its ``incomplete`` sorted set; the run ends when ``queue.count("incomplete")`` is 0. Latency:
``await job.refresh(until_complete=10)`` (saq waits on pub/sub).
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir
from bench.redis_peers._rcommon import (
    CONCURRENCY,
    DB_URL_ENV,
    DEFAULT_URL,
    cli,
    db_url,
    flush,
    gather_bounded,
    wait_async,
    worker,
)

NAME = "saq"
DB = 6
_ARGS = ["bench.redis_peers._saq_app.settings", "--workers", "1"]
_DESC = f"1 saq worker process, concurrency {CONCURRENCY}"


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "enqueue_concurrent", "drain", "latency"):
        return None
    url = db_url(base, DB)
    os.environ[DB_URL_ENV] = url
    flush(url)
    from saq import Queue

    deadline = Deadline(f"{NAME}:{workload}")

    async def go() -> PeerResult:
        queue = Queue.from_url(url)
        await queue.connect()

        async def enqueue_all(producers: int = 1) -> float:
            t0 = time.perf_counter()
            await gather_bounded(n, producers, lambda i: queue.enqueue("noop", i=i), deadline)
            return time.perf_counter() - t0

        try:
            with temp_dir(f"saq-{workload}") as tmp:
                if workload == "enqueue":
                    t = await enqueue_all()
                    return {"value": rate(n, t), "unit": "jobs/s", "note": "queue.enqueue"}
                if workload == "enqueue_concurrent":
                    t = await enqueue_all(CONCURRENCY)
                    note = f"queue.enqueue from {CONCURRENCY} concurrent tasks"
                    return {"value": rate(n, t), "unit": "jobs/s", "note": note}
                if workload == "drain":
                    await enqueue_all()

                    async def drained() -> bool:
                        return int(await queue.count("incomplete")) == 0

                    with worker("saq", _ARGS, url, tmp, deadline) as (child, t_ready):
                        await wait_async(drained, deadline, "draining", child)
                        t = time.time() - t_ready
                    return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
                samples = []
                with worker("saq", _ARGS, url, tmp, deadline) as (child, _):
                    for i in range(n):
                        t0 = time.perf_counter()
                        job = await queue.enqueue("noop", i=i)
                        assert job is not None
                        await job.refresh(until_complete=10)
                        samples.append((time.perf_counter() - t0) * 1000)
                        child.check_alive()
                        deadline.check("latency")
                return latency_result(samples, "queue.enqueue, job.refresh(until_complete)")
        finally:
            await queue.disconnect()

    try:
        return asyncio.run(go())
    finally:
        flush(url)


if __name__ == "__main__":
    cli(run)
