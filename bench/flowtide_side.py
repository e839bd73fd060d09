"""flowtide on its SQLite default, on the same workloads as the peers (bench/peers)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import _flowtide_harness as h
from bench.peers._common import (
    Child,
    Deadline,
    PeerResult,
    latency_result,
    percentile,
    rate,
    temp_dir,
    wait_for,
)
from flowtide.events import NewEvent

NAME = "flowtide"
WORKLOADS = ("enqueue", "enqueue_bulk", "drain", "chain3", "latency", "state_get", "append")
_WORKER_DESC = "1 worker process (flowtide worker, default concurrency 10)"


def _url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'flowtide.db'}"


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _run_enqueue(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    elapsed = asyncio.run(h.enqueue_each(_url(tmp), n))
    note = f"App.enqueue awaited once per job; {n} jobs in {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_bulk(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    elapsed = asyncio.run(h.enqueue_bulk(_url(tmp), n))
    note = f"App.enqueue_many, all {n} in one transaction: {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_drain(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    asyncio.run(h.enqueue_each(_url(tmp), n))
    db = tmp / "flowtide.db"
    done_sql = "SELECT count(*) FROM jobs WHERE state = 'completed'"
    with h.worker(tmp, _url(tmp), deadline) as (child, t_ready):
        wait_for(lambda: _count(db, done_sql) >= n, deadline, f"draining {n} jobs", child)
        t_done = time.time()
    elapsed = t_done - t_ready
    note = f"{_WORKER_DESC}; timed from worker start to the last completed job"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": f"{note}; {elapsed:.3f} s"}


async def _start_runs(tmp: Path, flow: str, inputs: list[Any]) -> list[str]:
    async with h.app(_url(tmp)) as app:
        return [await app.start(flow, value) for value in inputs]


def _run_chain3(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db = tmp / "flowtide.db"
    asyncio.run(_start_runs(tmp, "chain3", []))  # create the schema before the worker starts
    done_sql = "SELECT count(*) FROM runs WHERE status = 'completed'"
    with h.worker(tmp, _url(tmp), deadline) as (child, _):
        t0 = time.perf_counter()
        asyncio.run(_start_runs(tmp, "chain3", list(range(n))))
        wait_for(lambda: _count(db, done_sql) >= n, deadline, f"waiting for {n} runs", child)
        elapsed = time.perf_counter() - t0
    note = f"{_WORKER_DESC}; flow step1 -> step2 -> step3 (step: subscriptions)"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": f"{note}; {elapsed:.3f} s"}


async def _latency(tmp: Path, n: int, deadline: Deadline, child: Child) -> list[float]:
    gaps = []
    async with h.app(_url(tmp)) as app:
        for i in range(n):
            run_id = await app.start("latency", i)
            view = await app.wait(run_id, timeout=max(deadline.remaining(), 1))
            gaps.append(view["result"]["gap_ms"])
            child.check_alive()
    return gaps


def _run_latency(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    asyncio.run(_start_runs(tmp, "latency", []))
    with h.worker(tmp, _url(tmp), deadline) as (child, _):
        gaps = asyncio.run(_latency(tmp, n, deadline, child))
    note = (
        f"{_WORKER_DESC}; flow lat1 -> lat2 run one at a time; gap = perf_counter at lat2 "
        "start - at lat1 return (commit of lat1, enqueue and claim of lat2)"
    )
    return latency_result(gaps, note)


def _run_state_get(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> list[float]:
        async with h.app(_url(tmp)) as app:
            run_id = await app.start("state_probe", n)
            view = await app.wait(run_id, timeout=max(deadline.remaining(), 1))
            timings: list[float] = view["result"]
            return timings

    asyncio.run(_start_runs(tmp, "state_probe", []))
    with h.worker(tmp, _url(tmp), deadline):
        timings = asyncio.run(go())
    return latency_result(timings, "ctx.state.get of a committed key inside a step")


def _run_append(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    async def go() -> list[float]:
        async with h.app(_url(tmp)) as app:
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
