"""Where a PostgreSQL drain spends its time: the worker in this process, on a fresh schema.

    python -m bench.postgres.profile_drain [-n 10000] [--concurrency 100] [--profile out.prof]

Fills ``n`` no-op jobs, runs a worker and the scheduler (what ``flowtide worker`` runs) until
they are all done, and prints the rate, the backend calls made (count, items, mean size, time
awaited) and the process CPU time per job. With ``--profile`` the drain runs under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg

from bench import _flowtide_harness as h
from bench.postgres.flowtide_postgres import DEFAULT_URL
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.worker import Worker

Stats = dict[str, list[float]]  # name -> [calls, items, seconds]


def _count(obj: Any, name: str, stats: Stats, size: Callable[..., int]) -> None:
    fn = getattr(obj, name, None)
    if fn is None:
        return

    @functools.wraps(fn)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            s = stats[name]
            s[0] += 1
            s[1] += size(*args, **kwargs)
            s[2] += time.perf_counter() - t0

    setattr(obj, name, wrapped)


async def drain(url: str, n: int, concurrency: int, profile: str | None) -> None:
    async with h.app(url) as app:
        await app.enqueue_many("noop", list(range(n)))
        stats: Stats = defaultdict(lambda: [0.0, 0.0, 0.0])
        backend = app.backend
        _count(backend, "claim", stats, lambda w, q, limit, *a, **k: limit)
        _count(backend, "commit", stats, lambda items: len(items))
        _count(backend, "commit_and_claim", stats, lambda items, *a, **k: len(items))
        _count(backend, "heartbeat", stats, lambda w, ids, *a: len(ids))
        _count(backend, "claim_timers", stats, lambda *a: 1)
        _count(backend, "wait_for_change", stats, lambda *a: 1)
        worker = Worker(app.service, concurrency=concurrency)
        scheduler = Scheduler(app.service, triggers=app.trigger_service)
        prof = cProfile.Profile() if profile else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.enable()
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(scheduler.run())]
        while worker.processed < n:
            await asyncio.sleep(0.001)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)
        worker.stop()
        scheduler.stop()
        await asyncio.gather(*tasks)
    print(f"{n} jobs in {elapsed:.3f} s: {n / elapsed:,.0f} jobs/s")
    print(f"worker process CPU {cpu:.3f} s: {cpu / n * 1e6:.1f} us per job")
    for name, (calls, items, secs) in sorted(stats.items()):
        mean = items / calls if calls else 0
        print(f"  {name:18} {calls:6.0f} calls {items:7.0f} items (mean {mean:6.1f}) {secs:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(drain(f"{args.url}?schema={schema}", args.n, args.concurrency, args.profile))
    finally:

        async def drop() -> None:
            con = await asyncpg.connect(args.url)
            try:
                await con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await con.close()

        asyncio.run(drop())


if __name__ == "__main__":
    main()
