"""arq peer: ``await pool.enqueue_job(...)``; one ``arq`` worker (max_jobs=100, poll_delay 5 ms).

arq has no batch enqueue and no job chaining. Drain completion: arq removes a job from its
queue sorted set when it finishes, so the run ends when ``ZCARD arq:queue`` is 0.
"""

from __future__ import annotations

import asyncio
import time

from arq.connections import ArqRedis, RedisSettings, create_pool

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir
from bench.redis_peers._rcommon import (
    CONCURRENCY,
    DEFAULT_URL,
    cli,
    db_url,
    flush,
    gather_bounded,
    wait_async,
    worker,
)

NAME = "arq"
DB = 1
APP = "bench.redis_peers._arq_app"


async def _pool(url: str) -> ArqRedis:
    return await create_pool(RedisSettings.from_dsn(url))


async def _enqueue(url: str, n: int, deadline: Deadline, producers: int = 1) -> float:
    pool = await _pool(url)
    try:
        t0 = time.perf_counter()
        await gather_bounded(n, producers, lambda i: pool.enqueue_job("noop", i), deadline)
        return time.perf_counter() - t0
    finally:
        await pool.aclose()


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "enqueue_concurrent", "drain", "latency"):
        return None
    url = db_url(base, DB)
    flush(url)
    deadline = Deadline(f"{NAME}:{workload}")
    try:
        with temp_dir(f"arq-{workload}") as tmp:
            if workload == "enqueue":
                t = asyncio.run(_enqueue(url, n, deadline))
                return {"value": rate(n, t), "unit": "jobs/s", "note": "enqueue_job awaited"}
            if workload == "enqueue_concurrent":
                t = asyncio.run(_enqueue(url, n, deadline, CONCURRENCY))
                note = f"enqueue_job from {CONCURRENCY} concurrent tasks"
                return {"value": rate(n, t), "unit": "jobs/s", "note": note}
            if workload == "drain":
                asyncio.run(_enqueue(url, n, deadline))

                async def drained() -> float:
                    pool = await _pool(url)
                    try:

                        async def empty() -> bool:
                            return int(await pool.zcard("arq:queue")) == 0

                        with worker(APP, [], url, tmp, deadline) as (child, t_ready):
                            await wait_async(empty, deadline, "draining", child)
                            return time.time() - t_ready
                    finally:
                        await pool.aclose()

                t = asyncio.run(drained())
                note = "1 arq worker, max_jobs=100; worker start to empty queue"
                return {"value": rate(n, t), "unit": "jobs/s", "note": note}

            async def latency() -> list[float]:
                pool = await _pool(url)
                out = []
                try:
                    with worker(APP, [], url, tmp, deadline) as (child, _):
                        for i in range(n):
                            t0 = time.perf_counter()
                            job = await pool.enqueue_job("noop", i)
                            assert job is not None
                            await job.result(timeout=10, poll_delay=0.001)
                            out.append((time.perf_counter() - t0) * 1000)
                            child.check_alive()
                            deadline.check("latency")
                finally:
                    await pool.aclose()
                return out

            return latency_result(asyncio.run(latency()), "enqueue_job, job.result(poll 1 ms)")
    finally:
        flush(url)


if __name__ == "__main__":
    cli(run)
