"""taskiq app of the benchmark (worker: ``taskiq worker bench.redis_peers._taskiq_app:broker``)."""

from __future__ import annotations

import os

from taskiq import TaskiqEvents, TaskiqState
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, announce_ready

URL = os.environ.get(DB_URL_ENV, DEFAULT_URL + "/5")
broker = ListQueueBroker(URL).with_result_backend(RedisAsyncResultBackend(URL))


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _ready(state: TaskiqState) -> None:
    announce_ready()


@broker.task
async def noop(i: int) -> int:
    return i
