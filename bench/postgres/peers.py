"""procrastinate and pgqueuer on the PostgreSQL workloads, for the side-by-side table::

    python -m bench.postgres.peers [--quick] [--only drain,latency,chain3] [--url URL]

Each peer gets a fresh schema (dropped afterwards) and one worker process with the same
concurrency as flowtide's (100). Completion is read from the peer's own tables on a kept-open
connection: pgqueuer deletes a job when it is done (the queue table empties), procrastinate
marks it ``succeeded``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench.peers._common import (
    Deadline,
    PeerResult,
    child_process,
    latency_result,
    rate,
    read_ready_time,
    temp_dir,
    wait_for,
)
from bench.postgres.flowtide_postgres import CONCURRENCY, DEFAULT_URL, SIZES

PEERS = ("pgqueuer", "procrastinate")


class _Db:
    """One connection on a private event loop, for the parent's synchronous polling."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.con = self.loop.run_until_complete(
            asyncpg.connect(dsn, server_settings={"search_path": schema})
        )

    def value(self, sql: str, *args: Any) -> Any:
        return self.loop.run_until_complete(self.con.fetchval(sql, *args))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.con.close())
        self.loop.close()


@contextlib.contextmanager
def _schema(dsn: str) -> Iterator[str]:
    schema = f"bench_peer_{uuid.uuid4().hex[:8]}"
    db = _Db(dsn, "public")
    db.value(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        db.value(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        db.close()


async def _install(peer: str, dsn: str, schema: str) -> None:
    if peer == "pgqueuer":
        from pgqueuer import AsyncpgDriver, Queries

        con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            await Queries(AsyncpgDriver(con)).install()
        finally:
            await con.close()
    else:
        import procrastinate

        from bench.postgres._peer_workers import procrastinate_app

        app = procrastinate_app(dsn, schema)
        assert isinstance(app, procrastinate.App)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()


async def _enqueue(peer: str, dsn: str, schema: str, task: str, n: int) -> None:
    """All n in one batch call (both have one)."""
    if peer == "pgqueuer":
        from pgqueuer import AsyncpgDriver, Queries

        con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            payloads: list[bytes | None] = [str(i).encode() for i in range(n)]
            await Queries(AsyncpgDriver(con)).enqueue([task] * n, payloads, [0] * n)
        finally:
            await con.close()
    else:
        import procrastinate

        from bench.postgres._peer_workers import procrastinate_app

        app = procrastinate_app(dsn, schema)
        assert isinstance(app, procrastinate.App)
        async with app.open_async():
            kwargs: list[dict[str, Any]] = [{"i": i} for i in range(n)]
            await app.tasks[task].batch_defer_async(*kwargs)


def _remaining(peer: str, db: _Db) -> Callable[[], int]:
    if peer == "pgqueuer":
        return lambda: int(db.value("SELECT count(*) FROM pgqueuer"))
    sql = "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
    return lambda: int(db.value(sql))


@contextlib.contextmanager
def _worker(peer: str, dsn: str, schema: str, tmp: Path, deadline: Deadline) -> Iterator[float]:
    ready = tmp / "worker.ready"
    args = [peer, dsn, schema, str(ready), str(CONCURRENCY)]
    with child_process("bench.postgres._peer_workers", args, {}, tmp / "w.log") as child:
        wait_for(ready.exists, deadline, f"waiting for the {peer} worker", child)
        t_ready = read_ready_time(ready)
        assert t_ready is not None
        yield t_ready


def _drain(peer: str, dsn: str, n: int, tmp: Path, deadline: Deadline) -> PeerResult:
    with _schema(dsn) as schema:
        asyncio.run(_install(peer, dsn, schema))
        asyncio.run(_enqueue(peer, dsn, schema, "noop", n))
        db = _Db(dsn, schema)
        try:
            left = _remaining(peer, db)
            with _worker(peer, dsn, schema, tmp, deadline) as t_ready:
                wait_for(lambda: left() == 0, deadline, f"{peer} draining", interval=0.02)
                elapsed = time.time() - t_ready
        finally:
            db.close()
    note = f"1 worker process, concurrency {CONCURRENCY}; worker start to last completion"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": f"{note} {elapsed:.3f} s"}


def _chain3(peer: str, dsn: str, n: int, tmp: Path, deadline: Deadline) -> PeerResult:
    with _schema(dsn) as schema:
        asyncio.run(_install(peer, dsn, schema))
        db = _Db(dsn, schema)
        try:
            left = _remaining(peer, db)
            with _worker(peer, dsn, schema, tmp, deadline):
                t0 = time.perf_counter()
                asyncio.run(_enqueue(peer, dsn, schema, "step1", n))
                wait_for(lambda: left() == 0, deadline, f"{peer} chains", interval=0.02)
                elapsed = time.perf_counter() - t0
        finally:
            db.close()
    note = f"step1 enqueues step2 enqueues step3, {n} chains started in one batch"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": f"{note}; {elapsed:.3f} s"}


def _latency(peer: str, dsn: str, n: int, tmp: Path, deadline: Deadline) -> PeerResult:
    samples: list[float] = []
    with _schema(dsn) as schema:
        asyncio.run(_install(peer, dsn, schema))
        db = _Db(dsn, schema)
        try:
            left = _remaining(peer, db)
            enqueue, close = _one_job_enqueuer(peer, db, dsn, schema)
            with _worker(peer, dsn, schema, tmp, deadline):
                for _ in range(n):
                    t0 = time.perf_counter()
                    db.run(enqueue())
                    while left():
                        if time.perf_counter() - t0 > 30:
                            raise TimeoutError(f"{peer}: a job took more than 30 s")
                    samples.append((time.perf_counter() - t0) * 1000.0)
            db.run(close())
        finally:
            db.close()
    return latency_result(samples, "enqueue one no-op job until it is done (tight SQL poll)")


def _one_job_enqueuer(
    peer: str, db: _Db, dsn: str, schema: str
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(enqueue one no-op job, close) on the poller's event loop."""
    if peer == "pgqueuer":
        from pgqueuer import AsyncpgDriver, Queries

        queries = Queries(AsyncpgDriver(db.con))

        async def nothing() -> None:
            return None

        return (lambda: queries.enqueue("noop", b"1")), nothing
    import procrastinate

    from bench.postgres._peer_workers import procrastinate_app

    app = procrastinate_app(dsn, schema)
    assert isinstance(app, procrastinate.App)
    db.run(app.open_async())
    return (lambda: app.tasks["noop"].defer_async(i=1)), app.close_async


_RUNNERS = {"drain": _drain, "chain3": _chain3, "latency": _latency}


def run(peer: str, workload: str, n: int, dsn: str = DEFAULT_URL) -> PeerResult | None:
    runner = _RUNNERS.get(workload)
    if runner is None:
        return None
    with temp_dir(f"{peer}-postgres-{workload}") as tmp:
        return runner(peer, dsn, n, tmp, Deadline(f"{peer}:{workload}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(_RUNNERS))
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args()
    for workload in args.only.split(","):
        n = SIZES[workload] // (10 if args.quick else 1)
        for peer in args.peers.split(","):
            try:
                print(peer, workload, n, run(peer, workload, n, args.url), flush=True)
            except Exception as exc:  # one peer failing must not hide the others
                print(peer, workload, n, f"failed: {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
