"""flowtide on its PostgreSQL backend, on the same workloads as the PostgreSQL peers.

Every workload gets its own schema in the benchmark's database and drops it afterwards::

    python -m bench.postgres.flowtide_postgres [--quick] [--url postgresql://root@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg

from bench import _flowtide_harness as h
from bench.peers._common import (
    Deadline,
    PeerResult,
    latency_result,
    rate,
    temp_dir,
    wait_for,
)

NAME = "flowtide"
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"
CONCURRENCY = 100


def _url(base: str, schema: str) -> str:
    return f"{base}?schema={schema}"


@contextlib.contextmanager
def _counter(base: str, schema: str, sql: str) -> Iterator[Callable[[], int]]:
    """A cheap poll: one connection kept open on a private event loop."""
    loop = asyncio.new_event_loop()
    con = loop.run_until_complete(asyncpg.connect(base))
    query = sql.replace("{s}", f'"{schema}"')

    def count() -> int:
        value: int = loop.run_until_complete(con.fetchval(query))
        return value

    try:
        yield count
    finally:
        loop.run_until_complete(con.close())
        loop.close()


def _run_enqueue(base: str, schema: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    elapsed = asyncio.run(h.enqueue_each(_url(base, schema), n))
    note = f"App.enqueue awaited once per job (one transaction each); {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_bulk(base: str, schema: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> float:
        async with h.app(_url(base, schema)) as app:
            t0 = time.perf_counter()
            await app.enqueue_many("noop", list(range(n)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    note = f"App.enqueue_many: all {n} in one INSERT ... SELECT unnest(...); {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_drain(base: str, schema: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, schema)

    async def fill() -> None:
        async with h.app(url) as app:
            await app.enqueue_many("noop", list(range(n)))

    asyncio.run(fill())
    completed = "SELECT count(*) FROM {s}.jobs WHERE state = 'completed'"
    with (
        _counter(base, schema, completed) as done,
        h.worker(tmp, url, deadline, CONCURRENCY) as (child, t_ready),
    ):
        wait_for(lambda: done() >= n, deadline, f"draining {n} jobs", child, interval=0.02)
        t_done = time.time()
    elapsed = t_done - t_ready
    note = (
        h.WORKER_DESC.format(c=CONCURRENCY) + f"; worker start to last completion {elapsed:.3f} s"
    )
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_chain3(base: str, schema: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, schema)
    completed = "SELECT count(*) FROM {s}.runs WHERE status = 'completed'"
    with (
        _counter(base, schema, completed) as done,
        h.worker(tmp, url, deadline, CONCURRENCY) as (child, _),
    ):
        t0 = time.perf_counter()
        asyncio.run(h.start_all(url, "chain3", list(range(n))))
        wait_for(lambda: done() >= n, deadline, f"waiting for {n} runs", child, interval=0.02)
        elapsed = time.perf_counter() - t0
    note = h.WORKER_DESC.format(c=CONCURRENCY) + f"; step1 -> step2 -> step3; {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": note}


def _run_latency(base: str, schema: str, tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _url(base, schema)
    with h.worker(tmp, url, deadline, CONCURRENCY) as (child, _):
        samples = asyncio.run(h.job_latency(url, n, child))
    note = "enqueue of one no-op job until the client sees it completed (LISTEN/NOTIFY wake-up)"
    return latency_result(samples, note)


_RUNNERS = {
    "enqueue": _run_enqueue,
    "enqueue_bulk": _run_enqueue_bulk,
    "drain": _run_drain,
    "chain3": _run_chain3,
    "latency": _run_latency,
}
SIZES = {"enqueue": 10_000, "enqueue_bulk": 10_000, "drain": 10_000, "latency": 300, "chain3": 1000}


def run(workload: str, n: int, base: str = DEFAULT_URL) -> PeerResult | None:
    runner = _RUNNERS.get(workload)
    if runner is None:
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with temp_dir(f"{NAME}-postgres-{workload}") as tmp:
            return runner(base, schema, tmp, n, Deadline(f"{NAME}:{workload}"))
    finally:

        async def drop() -> None:
            con = await asyncpg.connect(base)
            try:
                await con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await con.close()

        asyncio.run(drop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(_RUNNERS))
    args = parser.parse_args()
    for workload in args.only.split(","):
        n = SIZES[workload] // (10 if args.quick else 1)
        print(workload, n, run(workload, n, args.url), flush=True)


if __name__ == "__main__":
    main()
