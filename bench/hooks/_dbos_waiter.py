"""DBOS side of the awaits benchmark, one process:
``python -m bench.hooks._dbos_waiter DB_URL N READY_FILE``.

Launches DBOS on its SQLite system database (defaults), starts N async workflows
``bench_wait`` (ids ``wait-0`` ...) that each block in ``DBOS.recv_async("approve")`` (1 h
timeout) and return ``time.time()`` taken right after ``recv`` returned; writes the READY
file once all N have entered ``recv``; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

APP_NAME = "flowtide-bench-awaits"
TOPIC = "approve"
waiting = 0


@DBOS.workflow(name="bench_wait")
async def wait_for_approval(i: int) -> dict[str, Any]:
    global waiting
    waiting += 1
    message = await DBOS.recv_async(TOPIC, timeout_seconds=3600)
    return {"t": time.time(), "i": i, "message": message}


def _write(path: str) -> None:
    """Write time.time() to ``path`` atomically."""
    tmp = Path(path + ".tmp")
    tmp.write_text(repr(time.time()))
    tmp.replace(path)


async def main(url: str, n: int, ready: str) -> None:
    config: DBOSConfig = {"name": APP_NAME, "system_database_url": url}
    DBOS(config=config)
    DBOS.launch()
    _write(ready + ".launched")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for lo in range(0, n, 200):
            for i in range(lo, min(n, lo + 200)):
                with SetWorkflowID(f"wait-{i}"):
                    await DBOS.start_workflow_async(wait_for_approval, i)
            if stop.is_set():
                return
        deadline = time.monotonic() + 600
        while waiting < n and not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        _write(ready)
        await stop.wait()
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
