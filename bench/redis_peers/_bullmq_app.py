"""The bullmq (Python port) worker of the benchmark: ``python -m bench.redis_peers._bullmq_app``."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from bullmq import Worker

from bench.redis_peers._rcommon import CONCURRENCY, DB_URL_ENV, DEFAULT_URL, announce_ready

QUEUE = "bench"


async def process(job: Any, token: str) -> Any:
    return job.data.get("i") if isinstance(job.data, dict) else None


async def main() -> None:
    url = os.environ.get(DB_URL_ENV, DEFAULT_URL + "/7")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(QUEUE, process, {"connection": url, "concurrency": CONCURRENCY})
    announce_ready()
    await stop.wait()
    await worker.close()


if __name__ == "__main__":
    asyncio.run(main())
