"""rq peer: ``queue.enqueue(...)`` / ``queue.enqueue_many(...)``; one ``SimpleWorker``.

Drain completion: ``ZCARD rq:finished:default`` (rq records every finished job there).
chain3: three jobs linked with ``depends_on`` (rq enqueues a dependent job when its
dependency finishes). Latency: ``job.latest_result(timeout=...)`` (a blocking stream read).
"""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir, wait_for
from bench.redis_peers import _rq_app
from bench.redis_peers._rcommon import DEFAULT_URL, cli, db_url, flush, worker

NAME = "rq"
DB = 2
APP = "bench.redis_peers._rq_app"
_DESC = "1 rq SimpleWorker"


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "enqueue_bulk", "drain", "latency", "chain3"):
        return None
    url = db_url(base, DB)
    flush(url)
    conn = Redis.from_url(url)
    q = Queue("default", connection=conn)
    deadline = Deadline(f"{NAME}:{workload}")

    def finished() -> int:
        return int(conn.zcard("rq:finished:default"))

    def enqueue_all() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            q.enqueue(_rq_app.noop, i)
            if i % 1000 == 999:
                deadline.check("enqueueing")
        return time.perf_counter() - t0

    try:
        with temp_dir(f"rq-{workload}") as tmp:
            if workload == "enqueue":
                t = enqueue_all()
                return {"value": rate(n, t), "unit": "jobs/s", "note": "queue.enqueue per job"}
            if workload == "enqueue_bulk":
                t0 = time.perf_counter()
                q.enqueue_many([Queue.prepare_data(_rq_app.noop, (i,)) for i in range(n)])
                t = time.perf_counter() - t0
                return {"value": rate(n, t), "unit": "jobs/s", "note": "queue.enqueue_many"}
            if workload == "drain":
                enqueue_all()
                with worker(APP, [], url, tmp, deadline) as (child, t_ready):
                    wait_for(lambda: finished() >= n, deadline, "draining", child)
                    t = time.time() - t_ready
                return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
            if workload == "chain3":
                with worker(APP, [], url, tmp, deadline) as (child, _):
                    t0 = time.perf_counter()
                    for i in range(n):
                        j1 = q.enqueue(_rq_app.step, i)
                        j2 = q.enqueue(_rq_app.step, depends_on=j1)
                        q.enqueue(_rq_app.step, depends_on=j2)
                    wait_for(lambda: finished() >= 3 * n, deadline, "chains", child)
                    t = time.perf_counter() - t0
                note = _DESC + "; 3 jobs linked by depends_on"
                return {"value": rate(n, t), "unit": "runs/s", "note": note}
            samples = []
            with worker(APP, [], url, tmp, deadline) as (child, _):
                for i in range(n):
                    t0 = time.perf_counter()
                    job = q.enqueue(_rq_app.noop, i)
                    res = job.latest_result(timeout=10)
                    assert res is not None
                    samples.append((time.perf_counter() - t0) * 1000)
                    child.check_alive()
                    deadline.check("latency")
            return latency_result(samples, "queue.enqueue, job.latest_result(timeout=10)")
    finally:
        conn.close()
        flush(url)


if __name__ == "__main__":
    cli(run)
