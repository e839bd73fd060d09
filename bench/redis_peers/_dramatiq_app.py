"""dramatiq actors of the benchmark (worker: ``dramatiq bench.redis_peers._dramatiq_app``)."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, announce_ready

URL = os.environ.get(DB_URL_ENV, DEFAULT_URL + "/3")


class _Ready(Middleware):  # type: ignore[misc]
    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        announce_ready()


broker = RedisBroker(url=URL)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
broker.add_middleware(_Ready())
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)  # type: ignore[misc]
def noop(i: int) -> int:
    return i


@dramatiq.actor(max_retries=0, store_results=True)  # type: ignore[misc]
def noop_result(i: int) -> int:
    return i


@dramatiq.actor(max_retries=0)  # type: ignore[misc]
def step(i: Any = None) -> int:
    return 1
