"""saq settings of the benchmark (worker: ``saq bench.redis_peers._saq_app.settings``)."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.redis_peers._rcommon import CONCURRENCY, DB_URL_ENV, DEFAULT_URL, announce_ready

URL = os.environ.get(DB_URL_ENV, DEFAULT_URL + "/6")


async def noop(ctx: dict[str, Any], *, i: int) -> int:
    return i


async def _startup(ctx: dict[str, Any]) -> None:
    announce_ready()


settings = {
    "queue": Queue.from_url(URL),
    "functions": [noop],
    "concurrency": CONCURRENCY,
    "startup": _startup,
}
