"""The peers' task queues for the webhook benchmark: one task that records when its body
starts. ``BENCH_HOOK_PEER`` picks the library: ``huey`` (``SqliteHuey`` on the file in
``BENCH_HOOK_DB``) or ``celery`` (Redis broker and result backend at ``BENCH_HOOK_DB``).
Worker children load this module too (``huey_consumer bench.hooks._peer_tasks.huey``,
``celery -A bench.hooks._peer_tasks worker``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

PEER_ENV = "BENCH_HOOK_PEER"
DB_ENV = "BENCH_HOOK_DB"
READY_ENV = "BENCH_HOOK_READY"
KIND = os.environ.get(PEER_ENV, "")


def handle(payload: Any) -> dict[str, Any]:
    return {"t": time.time(), "id": payload.get("id") if isinstance(payload, dict) else None}


def _announce_ready() -> None:
    path = os.environ.get(READY_ENV)
    if path:
        tmp = Path(path + ".tmp")
        tmp.write_text(repr(time.time()))
        tmp.replace(path)


huey: Any = None
app: Any = None
task: Any = None
if KIND == "huey":
    from huey import SqliteHuey  # type: ignore[import-untyped]

    huey = SqliteHuey("bench-hooks", filename=os.environ[DB_ENV])
    task = huey.task()(handle)
    huey.on_startup()(_announce_ready)
elif KIND == "celery":
    from celery import Celery
    from celery.signals import worker_ready

    app = Celery("bench-hooks", broker=os.environ[DB_ENV], backend=os.environ[DB_ENV])
    app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
    task = app.task(name="bench.hooks.handle")(handle)
    worker_ready.connect(lambda **_: _announce_ready(), weak=False)


def enqueue(payload: Any) -> str:
    """What the endpoint calls: huey ``task(payload)``, celery ``task.delay(payload)``."""
    if KIND == "huey":
        return str(task(payload).id)
    return str(task.delay(payload).id)


def started_at(task_id: str) -> float | None:
    """The task body's start time, from the library's own result store (None: not yet)."""
    if KIND == "huey":
        from huey.constants import EmptyData  # type: ignore[import-untyped]

        value = huey.storage.peek_data(task_id)
        if value is EmptyData:
            return None
        return float(huey.serializer.deserialize(value)["t"])
    result = app.AsyncResult(task_id)
    return float(result.result["t"]) if result.successful() else None
