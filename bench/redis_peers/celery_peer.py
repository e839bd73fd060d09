"""celery peer (Redis broker and result backend): ``task.delay(...)``; one worker process with
the threads pool (``-P threads -c 8``, no gossip/mingle/heartbeat).

celery has no batch enqueue. Drain: the no-op task ignores its result; the run ends when the
``celery`` list and the ``unacked`` hash are empty (celery acks a message as the task starts).
chain3: ``chain(step.s(i), step.s(), step.s())``, waiting for every chain's last result.
Latency: ``task.delay(i).get()`` (the Redis result backend waits on pub/sub).
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir, wait_for
from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, cli, db_url, flush, worker

NAME = "celery"
DB = 4
_ARGS = [
    "-A",
    "bench.redis_peers._celery_app",
    "worker",
    "-P",
    "threads",
    "-c",
    "8",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "-l",
    "WARNING",
]
_DESC = "1 celery worker process, -P threads -c 8"


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "drain", "latency", "chain3"):
        return None
    url = db_url(base, DB)
    os.environ[DB_URL_ENV] = url
    flush(url)
    from celery import chain
    from redis import Redis

    from bench.redis_peers import _celery_app as app

    conn = Redis.from_url(url)
    deadline = Deadline(f"{NAME}:{workload}")

    def idle() -> bool:
        return int(conn.llen("celery")) == 0 and int(conn.hlen("unacked")) == 0

    def enqueue_all() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            app.noop.delay(i)
            if i % 1000 == 999:
                deadline.check("enqueueing")
        return time.perf_counter() - t0

    try:
        with temp_dir(f"celery-{workload}") as tmp:
            if workload == "enqueue":
                t = enqueue_all()
                return {"value": rate(n, t), "unit": "jobs/s", "note": "task.delay per job"}
            if workload == "drain":
                enqueue_all()
                with worker("celery", _ARGS, url, tmp, deadline) as (child, t_ready):
                    wait_for(idle, deadline, "draining", child)
                    t = time.time() - t_ready
                return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
            if workload == "chain3":
                with worker("celery", _ARGS, url, tmp, deadline) as (child, _):
                    t0 = time.perf_counter()
                    results: list[Any] = [
                        chain(app.step.s(i), app.step.s(), app.step.s()).apply_async()
                        for i in range(n)
                    ]
                    for res in results:
                        res.get(timeout=max(1.0, deadline.remaining()))
                    t = time.perf_counter() - t0
                note = _DESC + "; celery.chain of 3 tasks, every last result awaited"
                return {"value": rate(n, t), "unit": "runs/s", "note": note}
            samples = []
            with worker("celery", _ARGS, url, tmp, deadline) as (child, _):
                for i in range(n):
                    t0 = time.perf_counter()
                    app.noop_result.delay(i).get(timeout=10)
                    samples.append((time.perf_counter() - t0) * 1000)
                    child.check_alive()
                    deadline.check("latency")
            return latency_result(samples, "task.delay(i).get() (Redis result backend)")
    finally:
        conn.close()
        flush(url)


if __name__ == "__main__":
    cli(run)
