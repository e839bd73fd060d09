"""python-process steps and functions inside a real worker: context round trips commit with the
step, crashes are retried on a fresh child, CPU-bound work does not block the worker's loop, and
the worker's shutdown stops every child."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from flowtide import Context, function
from flowtide.engine.worker import Worker
from tests.integration._engine_harness import running_app
from tests.runtimes import _handlers as h
from tests.runtimes._util import assert_no_leftovers

URL = "memory://"


def _spawned(worker: Worker | None) -> list[int]:
    assert worker is not None
    return [pid for pool in worker.runtimes.pools for pid in pool.spawned]


async def _job(app: Any, job_id: str, wait_until: Any, timeout: float = 20) -> Any:
    async def done() -> Any:
        job = await app.backend.get_job(job_id)
        return job if job is not None and job.state in ("completed", "failed") else None

    return await wait_until(done, timeout=timeout)


async def test_a_flow_of_process_steps_commits_state_emits_and_logs(wait_until: Any) -> None:
    async with running_app(URL, h.procs) as (app, worker):
        run_id = await app.start("procs", {"n": 4})
        view = await app.wait(run_id, timeout=30)
        events = await app.backend.read_events(run_id)
        state = (await app.service.state_at(run_id, None))["state"]
        pids = _spawned(worker)
    assert view["status"] == "completed", view
    assert view["steps"]["count"]["result"]["state"] == 4
    assert view["steps"]["square"]["result"] == {"square": 16, "attempt": 1}
    assert state == {"n": 4, "square": 16}
    assert [e["data"]["name"] for e in events if e["type"] == "emit"] == ["counted", "squared"]
    logs = [e["data"] for e in events if e["type"] == "log"]
    assert {"level": "info", "message": "counting", "fields": {"n": 4}} in logs
    stdout = {"stream": "stdout"}
    assert {"level": "info", "message": "hello from the child", "fields": stdout} in logs
    assert {"level": "warning", "message": "a warning", "fields": {"stream": "stderr"}} in logs
    assert_no_leftovers(pids)


async def test_a_crashed_child_fails_the_attempt_and_the_retry_succeeds(wait_until: Any) -> None:
    async with running_app(URL, h.crash_once) as (app, worker):
        job_id = await app.enqueue("crash_once", "x")
        job = await _job(app, job_id, wait_until)
        pids = _spawned(worker)
    assert job.state == "completed", job
    assert job.result["attempt"] == 2
    assert len(pids) == 2  # the retry ran on a fresh child
    assert_no_leftovers(pids)


async def test_cpu_bound_process_step_does_not_block_the_worker(wait_until: Any) -> None:
    @function(queue="fast")
    async def ping(_: Any, ctx: Context) -> float:
        return time.monotonic()

    lags: list[float] = []
    stop = asyncio.Event()

    async def monitor() -> None:
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    async with running_app(URL, h.burn, ping) as (app, worker):
        warm = await app.enqueue("burn", 1)
        await _job(app, warm, wait_until)
        mon = asyncio.create_task(monitor())
        burn_id = await app.enqueue("burn", 1500)
        latencies = []
        while (job := await app.backend.get_job(burn_id)) is None or job.state != "completed":
            t = time.monotonic()
            ping_id = await app.enqueue("ping", None)
            await _job(app, ping_id, wait_until)
            latencies.append(time.monotonic() - t)
        stop.set()
        await mon
        pids = _spawned(worker)
    assert job.result > 0
    assert len(latencies) >= 10, latencies
    assert max(latencies) < 0.5, latencies
    assert max(lags) < 0.2, max(lags)
    assert_no_leftovers(pids)
