"""dramatiq peer (RedisBroker): ``actor.send(...)``; one ``dramatiq`` process, 8 threads.

dramatiq has no batch enqueue. Drain completion: a message stays in the ``.msgs`` hash of its
queue until it is acked after processing, so the run ends when ``HLEN dramatiq:default.msgs``
is 0. chain3: ``pipeline([...]).run()``. Latency: ``message.get_result(block=True)`` (Results
middleware on Redis, a blocking pop).
"""

from __future__ import annotations

import os
import time

from bench.peers._common import Deadline, PeerResult, latency_result, rate, temp_dir, wait_for
from bench.redis_peers._rcommon import DB_URL_ENV, DEFAULT_URL, cli, db_url, flush, worker

NAME = "dramatiq"
DB = 3
_ARGS = ["bench.redis_peers._dramatiq_app", "--processes", "1", "--threads", "8"]
_DESC = "1 dramatiq process, 8 threads"


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    if workload not in ("enqueue", "drain", "latency", "chain3"):
        return None
    url = db_url(base, DB)
    os.environ[DB_URL_ENV] = url
    flush(url)
    import dramatiq
    from redis import Redis

    from bench.redis_peers import _dramatiq_app as app

    conn = Redis.from_url(url)
    deadline = Deadline(f"{NAME}:{workload}")

    def pending() -> int:
        return int(conn.hlen("dramatiq:default.msgs"))

    def enqueue_all() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            app.noop.send(i)
            if i % 1000 == 999:
                deadline.check("enqueueing")
        return time.perf_counter() - t0

    try:
        with temp_dir(f"dramatiq-{workload}") as tmp:
            if workload == "enqueue":
                t = enqueue_all()
                return {"value": rate(n, t), "unit": "jobs/s", "note": "actor.send per job"}
            if workload == "drain":
                enqueue_all()
                with worker("dramatiq", _ARGS, url, tmp, deadline) as (child, t_ready):
                    wait_for(lambda: pending() == 0, deadline, "draining", child)
                    t = time.time() - t_ready
                return {"value": rate(n, t), "unit": "jobs/s", "note": _DESC}
            if workload == "chain3":
                with worker("dramatiq", _ARGS, url, tmp, deadline) as (child, _):
                    t0 = time.perf_counter()
                    for i in range(n):
                        dramatiq.pipeline(
                            [app.step.message(i), app.step.message(), app.step.message()]
                        ).run()
                    wait_for(lambda: pending() == 0, deadline, "chains", child)
                    t = time.perf_counter() - t0
                note = _DESC + "; dramatiq.pipeline of 3 messages"
                return {"value": rate(n, t), "unit": "runs/s", "note": note}
            samples = []
            with worker("dramatiq", _ARGS, url, tmp, deadline) as (child, _):
                for i in range(n):
                    t0 = time.perf_counter()
                    message = app.noop_result.send(i)
                    message.get_result(block=True, timeout=10_000)
                    samples.append((time.perf_counter() - t0) * 1000)
                    child.check_alive()
                    deadline.check("latency")
            return latency_result(samples, "actor.send, message.get_result(block=True)")
    finally:
        conn.close()
        flush(url)


if __name__ == "__main__":
    cli(run)
