"""celery app of the benchmark (worker: ``celery -A bench.redis_peers._celery_app worker``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, announce_ready

URL = os.environ.get(DB_URL_ENV, DEFAULT_URL + "/4")
app = Celery("bench", broker=URL, backend=URL)
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _ready(**_: Any) -> None:
    announce_ready()


@app.task(ignore_result=True)  # type: ignore[untyped-decorator]
def noop(i: int) -> int:
    return i


@app.task  # type: ignore[untyped-decorator]
def noop_result(i: int) -> int:
    return i


@app.task  # type: ignore[untyped-decorator]
def step(i: Any = None) -> int:
    return 1
