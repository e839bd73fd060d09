"""A flowtide worker process for the PostgreSQL benchmarks:
``python -m bench.postgres._worker URL READY CONCURRENCY``.

It runs what ``flowtide worker`` runs (run_host with the worker and the scheduler); the app is
given as a module, the concurrency as an argument, and the ready time is written to a file.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from flowtide import App, Config
from flowtide.registry import discover
from flowtide.server.host import run_host


async def main(url: str, ready: str, concurrency: int) -> None:
    config = Config(backend=url)
    config.worker.concurrency = concurrency
    async with App(config, registry=discover(["bench._flowtide_app"])) as app:

        def announce(_: str) -> None:
            tmp = Path(ready + ".tmp")
            tmp.write_text(repr(time.time()))
            tmp.replace(ready)

        await run_host(app, serve_api=False, run_worker=True, on_ready=announce)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
