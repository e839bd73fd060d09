"""Where a PostgreSQL drain spends its time: the worker in this process, on a fresh schema.

    python -m bench.postgres.profile_drain [-n 10000] [--concurrency 100] [--profile out.prof]
        [--no-commit-claim] [--trace]

Fills ``n`` no-op jobs, runs a worker and the scheduler (what ``flowtide worker`` runs) until
they are all done, and prints the rate, the CPU time per job of this process and of its
server processes (read from /proc: a local server only), and the backend calls made (count,
items, mean size, time awaited). ``--profile`` runs the drain under cProfile;
``--no-commit-claim`` hides ``commit_and_claim`` (commits and claims are separate round trips,
as before it existed); ``--trace`` prints every call with its start and duration.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench import _flowtide_harness as h
from bench.postgres.flowtide_postgres import DEFAULT_URL
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.worker import Worker

Stats = dict[str, list[float]]  # name -> [calls, items, seconds]
_TICK = os.sysconf("SC_CLK_TCK")


async def _server_cpu(url: str, app_name: str) -> dict[int, float]:
    """CPU seconds used so far by each server process of ``app_name``."""
    con = await asyncpg.connect(url.split("?", 1)[0])
    try:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
        pids = [r[0] for r in await con.fetch(sql, app_name)]
    finally:
        await con.close()
    return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _count(obj: Any, name: str, stats: Stats, size: Callable[..., int], trace: bool) -> None:
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
            if trace:
                took = (time.perf_counter() - t0) * 1e3
                print(f"{t0 * 1e3:.2f} {name} {size(*args, **kwargs)} {took:.2f} ms")

    setattr(obj, name, wrapped)


async def drain(url: str, n: int, concurrency: int, profile: str | None, trace: bool) -> None:
    async with h.app(url) as app:
        await app.enqueue_many("noop", list(range(n)))
        stats: Stats = defaultdict(lambda: [0.0, 0.0, 0.0])
        backend = app.backend
        _count(backend, "claim", stats, lambda w, q, limit, *a, **k: limit, trace)
        _count(backend, "commit", stats, lambda items: len(items), trace)
        _count(backend, "commit_and_claim", stats, lambda items, *a, **k: len(items), trace)
        _count(backend, "heartbeat", stats, lambda w, ids, *a: len(ids), trace)
        _count(backend, "claim_timers", stats, lambda *a: 1, trace)
        _count(backend, "wait_for_change", stats, lambda *a: 1, trace)
        worker = Worker(app.service, concurrency=concurrency)
        scheduler = Scheduler(app.service, triggers=app.trigger_service)
        prof = cProfile.Profile() if profile else None
        app_name = backend.settings.application_name  # type: ignore[attr-defined]
        server0 = await _server_cpu(url, app_name)
        cpu0, t0 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.enable()
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(scheduler.run())]
        while worker.processed < n:
            await asyncio.sleep(0.001)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if prof is not None and profile is not None:
            prof.disable()
            prof.dump_stats(profile)
        server1 = await _server_cpu(url, app_name)
        server = sum(v - server0.get(pid, 0.0) for pid, v in server1.items())
        worker.stop()
        scheduler.stop()
        await asyncio.gather(*tasks)
    print(f"{n} jobs in {elapsed:.3f} s: {n / elapsed:,.0f} jobs/s")
    print(f"worker process CPU {cpu:.3f} s: {cpu / n * 1e6:.1f} us per job")
    print(f"its server processes' CPU {server:.3f} s: {server / n * 1e6:.1f} us per job")
    for name, (calls, items, secs) in sorted(stats.items()):
        mean = items / calls if calls else 0
        print(f"  {name:18} {calls:6.0f} calls {items:7.0f} items (mean {mean:6.1f}) {secs:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--no-commit-claim", action="store_true")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.no_commit_claim:
        from flowtide.backends.postgres import PostgresBackend

        del PostgresBackend.commit_and_claim
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        url = f"{args.url}?schema={schema}"
        asyncio.run(drain(url, args.n, args.concurrency, args.profile, args.trace))
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
