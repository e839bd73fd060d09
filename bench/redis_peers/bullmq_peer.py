"""bullmq peer (the Python port, PyPI ``bullmq``): ``await queue.add(...)`` /
``queue.addBulk(...)``; one worker process with ``concurrency=100``.

Completion: bullmq keeps completed jobs in ``bull:bench:completed`` (a sorted set), counted
with ZCARD. chain3: a ``FlowProducer`` flow of three nested jobs (a parent runs after its
child). Latency: the Python port has no ``QueueEvents``/``waitUntilFinished``, so the client
polls the completed set every 1 ms.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bullmq import FlowProducer, Queue
from redis.asyncio import Redis

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir
from bench.redis_peers._bullmq_app import QUEUE
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

NAME = "bullmq"
DB = 7
APP = "bench.redis_peers._bullmq_app"
_DESC = f"1 bullmq worker process, concurrency {CONCURRENCY}"
_DONE = f"bull:{QUEUE}:completed"


def _flow(i: int) -> dict[str, Any]:
    node: dict[str, Any] = {"name": "step", "queueName": QUEUE, "data": {"i": i}}
    for _ in range(2):
        node = {"name": "step", "queueName": QUEUE, "data": {}, "children": [node]}
    return node


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in (
        "enqueue",
        "enqueue_concurrent",
        "enqueue_bulk",
        "drain",
        "latency",
        "chain3",
    ):
        return None
    url = db_url(base, DB)
    flush(url)
    deadline = Deadline(f"{NAME}:{workload}")

    async def go() -> PeerResult:
        queue = Queue(QUEUE, {"connection": url})
        conn = Redis.from_url(url)

        async def completed() -> int:
            return int(await conn.zcard(_DONE))

        async def enqueue_all(producers: int = 1) -> float:
            t0 = time.perf_counter()
            await gather_bounded(n, producers, lambda i: queue.add("noop", {"i": i}), deadline)
            return time.perf_counter() - t0

        try:
            with temp_dir(f"bullmq-{workload}") as tmp:
                if workload == "enqueue":
                    t = await enqueue_all()
                    return {"value": rate(n, t), "unit": "jobs/s", "note": "queue.add awaited"}
                if workload == "enqueue_concurrent":
                    t = await enqueue_all(CONCURRENCY)
                    note = f"queue.add from {CONCURRENCY} concurrent tasks"
                    return {"value": rate(n, t), "unit": "jobs/s", "note": note}
                if workload == "enqueue_bulk":
                    t0 = time.perf_counter()
                    await queue.addBulk([{"name": "noop", "data": {"i": i}} for i in range(n)])
                    t = time.perf_counter() - t0
                    return {"value": rate(n, t), "unit": "jobs/s", "note": "queue.addBulk"}
                if workload == "drain":
                    await enqueue_all()

                    async def drained() -> bool:
                        return await completed() >= n

                    with worker(APP, [], url, tmp, deadline) as (child, t_ready):
                        await wait_async(drained, deadline, "draining", child)
                        t = time.time() - t_ready
                    return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
                if workload == "chain3":
                    flows = FlowProducer(url)
                    try:
                        with worker(APP, [], url, tmp, deadline) as (child, _):
                            t0 = time.perf_counter()
                            for i in range(n):
                                await flows.add(_flow(i))

                            async def chained() -> bool:
                                return await completed() >= 3 * n

                            await wait_async(chained, deadline, "chains", child)
                            t = time.perf_counter() - t0
                    finally:
                        await flows.close()
                    note = _DESC + "; FlowProducer flow of 3 nested jobs"
                    return {"value": rate(n, t), "unit": "runs/s", "note": note}
                samples = []
                with worker(APP, [], url, tmp, deadline) as (child, _):
                    for i in range(n):
                        t0 = time.perf_counter()
                        job = await queue.add("noop", {"i": i})
                        while await conn.zscore(_DONE, job.id) is None:
                            deadline.check("latency")
                            await asyncio.sleep(0.001)
                        samples.append((time.perf_counter() - t0) * 1000)
                        child.check_alive()
                return latency_result(samples, "queue.add, completed set polled every 1 ms")
        finally:
            await conn.aclose()
            await queue.close()

    try:
        return asyncio.run(go())
    finally:
        flush(url)


if __name__ == "__main__":
    cli(run)
