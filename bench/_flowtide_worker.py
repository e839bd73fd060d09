"""A flowtide worker process for the benchmarks: ``python -m bench._flowtide_worker URL READY``.

It runs exactly what ``flowtide worker`` runs (run_host with the worker and the scheduler);
only the app is given as a module and the ready time is written to a file.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from flowtide import App, load_config
from flowtide.registry import discover
from flowtide.server.host import run_host


async def main(url: str, ready: str) -> None:
    registry = discover(["bench._flowtide_app"])
    config = load_config(overrides={"backend": url})  # FLOWTIDE_* variables apply, as in the CLI
    async with App(config, registry=registry) as app:

        def announce(_: str) -> None:
            tmp = Path(ready + ".tmp")
            tmp.write_text(repr(time.time()))
            tmp.replace(ready)

        await run_host(app, serve_api=False, run_worker=True, on_ready=announce)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
