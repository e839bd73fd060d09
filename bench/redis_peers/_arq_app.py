"""The arq worker of the benchmark: ``python -m bench.redis_peers._arq_app`` (one process)."""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings
from arq.worker import run_worker

from bench.redis_peers._rcommon import CONCURRENCY, DB_URL_ENV, DEFAULT_URL, announce_ready


async def noop(ctx: dict[str, Any], i: int) -> int:
    return i


async def _startup(ctx: dict[str, Any]) -> None:
    announce_ready()


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get(DB_URL_ENV, DEFAULT_URL + "/1"))
    max_jobs = CONCURRENCY
    poll_delay = 0.005  # arq's default (0.5 s) would dominate the latency row
    on_startup = _startup
    handle_signals = True


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
