"""flowtide on its SQLite default, on the same workloads as the peers (bench/peers)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.peers._common import (
    Child,
    Deadline,
    PeerResult,
    child_process,
    latency_result,
    percentile,
    rate,
    read_ready_time,
    temp_dir,
    wait_for,
)
from flowtide import App, Config
from flowtide.events import NewEvent
from flowtide.registry import discover

NAME = "flowtide"
WORKLOADS = ("enqueue", "enqueue_bulk", "drain", "chain3", "latency", "state_get", "append")
_WORKER_DESC = "1 worker process (flowtide worker, default concurrency 10)"


def _url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'flowtide.db'}"


def _app(tmp: Path) -> App:
    return App(Config(backend=_url(tmp)), registry=discover(["bench._flowtide_app"]))


@contextlib.contextmanager
def _worker(tmp: Path, deadline: Deadline) -> Iterator[tuple[Child, float]]:
    ready = tmp / "worker.ready"
    args = [_url(tmp), str(ready)]
    with child_process("bench._flowtide_worker", args, {}, tmp / "worker.log") as child:
        wait_for(ready.exists, deadline, "waiting for the flowtide worker to start", child)
        t_ready = read_ready_time(ready)
        assert t_ready is not None
        yield child, t_ready


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def _enqueue(tmp: Path, n: int) -> float:
    async with _app(tmp) as app:
        t0 = time.perf_counter()
        for i in range(n):
            await app.enqueue("noop", i)
        return time.perf_counter() - t0


def _run_enqueue(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    elapsed = asyncio.run(_enqueue(tmp, n))
    note = f"App.enqueue awaited once per job; {n} jobs in {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_bulk(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> float:
        async with _app(tmp) as app:
            t0 = time.perf_counter()
            await app.enqueue_many("noop", list(range(n)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    note = f"App.enqueue_many, all {n} in one transaction: {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_drain(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    asyncio.run(_enqueue(tmp, n))
    db = tmp / "flowtide.db"
    done_sql = "SELECT count(*) FROM jobs WHERE state = 'completed'"
    with _worker(tmp, deadline) as (child, t_ready):
        wait_for(lambda: _count(db, done_sql) >= n, deadline, f"draining {n} jobs", child)
        t_done = time.time()
    elapsed = t_done - t_ready
    note = f"{_WORKER_DESC}; timed from worker start to the last completed job"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": f"{note}; {elapsed:.3f} s"}


async def _start_runs(tmp: Path, flow: str, inputs: list[Any]) -> list[str]:
    async with _app(tmp) as app:
        return [await app.start(flow, value) for value in inputs]


def _run_chain3(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db = tmp / "flowtide.db"
    asyncio.run(_start_runs(tmp, "chain3", []))  # create the schema before the worker starts
    done_sql = "SELECT count(*) FROM runs WHERE status = 'completed'"
    with _worker(tmp, deadline) as (child, _):
        t0 = time.perf_counter()
        asyncio.run(_start_runs(tmp, "chain3", list(range(n))))
        wait_for(lambda: _count(db, done_sql) >= n, deadline, f"waiting for {n} runs", child)
        elapsed = time.perf_counter() - t0
    note = f"{_WORKER_DESC}; flow step1 -> step2 -> step3 (step: subscriptions)"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": f"{note}; {elapsed:.3f} s"}


async def _latency(tmp: Path, n: int, deadline: Deadline, child: Child) -> list[float]:
    gaps = []
    async with _app(tmp) as app:
        for i in range(n):
            run_id = await app.start("latency", i)
            view = await app.wait(run_id, timeout=max(deadline.remaining(), 1))
            gaps.append(view["result"]["gap_ms"])
            child.check_alive()
    return gaps


def _run_latency(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    asyncio.run(_start_runs(tmp, "latency", []))
    with _worker(tmp, deadline) as (child, _):
        gaps = asyncio.run(_latency(tmp, n, deadline, child))
    note = (
        f"{_WORKER_DESC}; flow lat1 -> lat2 run one at a time; gap = perf_counter at lat2 "
        "start - at lat1 return (commit of lat1, enqueue and claim of lat2)"
    )
    return latency_result(gaps, note)


def _run_state_get(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> list[float]:
        async with _app(tmp) as app:
            run_id = await app.start("state_probe", n)
            view = await app.wait(run_id, timeout=max(deadline.remaining(), 1))
            timings: list[float] = view["result"]
            return timings

    asyncio.run(_start_runs(tmp, "state_probe", []))
    with _worker(tmp, deadline):
        timings = asyncio.run(go())
    return latency_result(timings, "ctx.state.get of a committed key inside a step")


def _run_append(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> list[float]:
        async with _app(tmp) as app:
            run_id = await app.start("chain3", 0)
            out = []
            for i in range(n):
                t0 = time.perf_counter()
                await app.backend.append_events(run_id, [NewEvent("log", {"message": i})])
                out.append((time.perf_counter() - t0) * 1000.0)
            return out

    timings = asyncio.run(go())
    note = f"one durable event append (own transaction) per call; p95 {percentile(timings, 95):.3f}"
    return latency_result(timings, note)


_RUNNERS = {
    "enqueue": _run_enqueue,
    "enqueue_bulk": _run_enqueue_bulk,
    "drain": _run_drain,
    "chain3": _run_chain3,
    "latency": _run_latency,
    "state_get": _run_state_get,
    "append": _run_append,
}


def run(workload: str, n: int) -> PeerResult | None:
    runner = _RUNNERS.get(workload)
    if runner is None:
        return None
    deadline = Deadline(f"{NAME}:{workload}")
    with temp_dir(f"{NAME}-{workload}") as tmp:
        return runner(tmp, n, deadline)
