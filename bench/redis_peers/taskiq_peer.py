"""taskiq peer (taskiq-redis ``ListQueueBroker`` + ``RedisAsyncResultBackend``):
``await task.kiq(...)``; one ``taskiq worker --workers 1`` (up to 100 tasks at once).

taskiq has no batch enqueue, and chaining needs the separate taskiq-pipelines package (not
benchmarked). Drain completion: the result backend writes one key per finished task in the
peer's own database, so the run ends when the database holds n result keys. Latency:
``await (await task.kiq(i)).wait_result(check_interval=0.001)`` (taskiq polls).
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

NAME = "taskiq"
DB = 5
_ARGS = ["worker", "bench.redis_peers._taskiq_app:broker", "--workers", "1"]
_DESC = "1 taskiq worker process (--workers 1, max_async_tasks 100)"


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "enqueue_concurrent", "drain", "latency"):
        return None
    url = db_url(base, DB)
    os.environ[DB_URL_ENV] = url
    flush(url)
    from redis.asyncio import Redis

    from bench.redis_peers import _taskiq_app as app

    deadline = Deadline(f"{NAME}:{workload}")

    async def enqueue_all(producers: int = 1) -> float:
        t0 = time.perf_counter()
        await gather_bounded(n, producers, app.noop.kiq, deadline)
        return time.perf_counter() - t0

    async def go() -> PeerResult:
        await app.broker.startup()
        conn = Redis.from_url(url)
        try:
            with temp_dir(f"taskiq-{workload}") as tmp:
                if workload == "enqueue":
                    t = await enqueue_all()
                    return {"value": rate(n, t), "unit": "jobs/s", "note": "task.kiq awaited"}
                if workload == "enqueue_concurrent":
                    t = await enqueue_all(CONCURRENCY)
                    note = f"task.kiq from {CONCURRENCY} concurrent tasks"
                    return {"value": rate(n, t), "unit": "jobs/s", "note": note}
                if workload == "drain":
                    await enqueue_all()

                    async def done() -> bool:
                        return int(await conn.dbsize()) - int(await conn.exists("taskiq")) >= n

                    with worker("taskiq", _ARGS, url, tmp, deadline) as (child, t_ready):
                        await wait_async(done, deadline, "draining", child)
                        t = time.time() - t_ready
                    return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
                samples = []
                with worker("taskiq", _ARGS, url, tmp, deadline) as (child, _):
                    for i in range(n):
                        t0 = time.perf_counter()
                        task = await app.noop.kiq(i)
                        await task.wait_result(check_interval=0.001, timeout=10)
                        samples.append((time.perf_counter() - t0) * 1000)
                        child.check_alive()
                        deadline.check("latency")
                return latency_result(samples, "task.kiq, wait_result(check_interval=1 ms)")
        finally:
            await conn.aclose()
            await app.broker.shutdown()

    try:
        return asyncio.run(go())
    finally:
        flush(url)


if __name__ == "__main__":
    cli(run)
