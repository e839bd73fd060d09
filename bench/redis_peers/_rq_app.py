"""rq tasks and the worker of the benchmark: ``python -m bench.redis_peers._rq_app``.

One ``SimpleWorker`` (jobs run in the worker process itself; rq's default ``Worker`` forks a
work horse per job, which is far slower for no-op jobs).
"""

from __future__ import annotations

import os
from typing import Any

from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, announce_ready


def noop(i: int) -> int:
    return i


def step(i: Any = None) -> int:
    return 1


def main() -> None:
    from redis import Redis
    from rq import Queue
    from rq.worker import SimpleWorker

    class BenchWorker(SimpleWorker):
        def register_birth(self, *args: Any, **kwargs: Any) -> None:
            super().register_birth(*args, **kwargs)
            announce_ready()

    conn = Redis.from_url(os.environ.get(DB_URL_ENV, DEFAULT_URL + "/2"))
    BenchWorker([Queue("default", connection=conn)], connection=conn).work(logging_level="WARNING")


if __name__ == "__main__":
    main()
