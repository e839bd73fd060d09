"""The peers' webhook endpoint: the glue users write today, a FastAPI route that enqueues a
task and answers 202 with its id (``uvicorn bench.hooks._peer_web:app``). No signature check,
no fire record, no deduplication, no run history."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request

from bench.hooks import _peer_tasks

app = FastAPI()
SYNC = os.environ.get("BENCH_HOOK_ENDPOINT", "async") == "sync"

if SYNC:  # a plain def: FastAPI runs it in its thread pool (blocking client calls are fine)

    @app.post("/hooks/bench-in", status_code=202)
    def hook_sync(payload: dict[str, Any]) -> dict[str, str]:
        return {"task_id": _peer_tasks.enqueue(payload)}

else:  # async def calling the (blocking, short) enqueue directly on the event loop

    @app.post("/hooks/bench-in", status_code=202)
    async def hook(request: Request) -> dict[str, str]:
        return {"task_id": _peer_tasks.enqueue(await request.json())}
