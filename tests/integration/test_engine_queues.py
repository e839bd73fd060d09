"""Queue semantics on every backend: concurrency, delays, priorities, dedupe, pause, retry,
leases and their reclaim, graceful shutdown, and stall detection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowtide import Context, Flow, NotFound, function
from flowtide.engine import orchestrator
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.worker import Worker
from tests.integration._engine_harness import make_config, running_app, types_of


async def job_state(app: Any, job_id: str) -> str:
    job = await app.backend.get_job(job_id)
    return str(job.state) if job else "missing"


def state_is(app: Any, job_id: str, state: str) -> Any:
    async def check() -> bool:
        return await job_state(app, job_id) == state

    return check


async def test_per_queue_concurrency_is_respected(backend_url: str, wait_until: Any) -> None:
    active = 0
    peak = 0

    @function(queue="limited", concurrency=2)
    async def squeeze(i: int, ctx: Context) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return i

    async with running_app(backend_url, squeeze, concurrency=10) as (app, _):
        ids = [await app.enqueue("squeeze", i) for i in range(8)]

        async def all_done() -> bool:
            return all([await job_state(app, i) == "completed" for i in ids])

        await wait_until(all_done, timeout=10)
    assert peak == 2


async def test_delayed_job_waits_for_its_time(backend_url: str, wait_until: Any) -> None:
    started: list[float] = []

    @function(queue="later")
    async def later(_: Any, ctx: Context) -> None:
        started.append(time.monotonic())

    async with running_app(backend_url, later) as (app, _):
        t0 = time.monotonic()
        job_id = await app.enqueue("later", None, delay="400ms")
        assert await job_state(app, job_id) == "delayed"
        await wait_until(state_is(app, job_id, "completed"), timeout=5)
        done = await app.backend.get_job(job_id)
    assert done is not None and done.state == "completed"
    assert started[0] - t0 >= 0.35


async def test_priority_and_pause_resume(backend_url: str, wait_until: Any) -> None:
    order: list[str] = []

    @function(queue="prio")
    async def record(name: str, ctx: Context) -> None:
        order.append(name)

    async with running_app(backend_url, record, concurrency=1) as (app, _):
        await app.backend.set_paused("prio", True)
        await app.service.enqueue("record", "low-1", priority=0)
        await app.service.enqueue("record", "high", priority=10)
        await app.service.enqueue("record", "low-2", priority=0)
        await asyncio.sleep(0.1)  # give a paused queue a chance to (wrongly) run
        assert order == []
        counts = await app.backend.queue_counts()
        assert counts["prio"]["waiting"] == 3
        await app.backend.set_paused("prio", False)
        await wait_until(lambda: len(order) == 3, timeout=5)
    assert order == ["high", "low-1", "low-2"]


async def test_dedupe_key(backend_url: str, wait_until: Any) -> None:
    gate = asyncio.Event()

    @function(queue="dedupe")
    async def once(_: Any, ctx: Context) -> None:
        await gate.wait()

    async with running_app(backend_url, once) as (app, _):
        first = await app.enqueue("once", 1, key="mail-42")
        assert await app.enqueue("once", 2, key="mail-42") == first
        other = await app.enqueue("once", 3, key="mail-43")
        assert other != first
        gate.set()
        await wait_until(state_is(app, first, "completed"), timeout=5)
        again = await app.enqueue("once", 4, key="mail-42")
    assert again != first


async def test_failed_job_can_be_retried_and_deleted(backend_url: str, wait_until: Any) -> None:
    calls = 0

    @function(queue="fragile")
    async def fragile(_: Any, ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first call fails")
        return "fine"

    async with running_app(backend_url, fragile) as (app, _):
        job_id = await app.enqueue("fragile")
        await wait_until(state_is(app, job_id, "failed"), timeout=5)
        job = await app.backend.get_job(job_id)
        assert job is not None and job.error["message"] == "first call fails"
        with pytest.raises(NotFound):
            await app.service.retry_job("no-such-job")
        await app.service.retry_job(job_id)
        await wait_until(state_is(app, job_id, "completed"), timeout=5)
        done = await app.backend.get_job(job_id)
        assert done is not None and done.result == "fine" and done.attempt == 1
        with pytest.raises(orchestrator.Conflict):
            await app.service.retry_job(job_id)
        assert await app.backend.delete_job(job_id) is True
        assert await app.backend.get_job(job_id) is None
        assert await app.backend.delete_job(job_id) is False


async def test_function_retries_with_backoff(backend_url: str, wait_until: Any) -> None:
    from flowtide import Backoff

    @function(queue="retrying", retries=2, backoff=Backoff.fixed("50ms"))
    async def flaky(_: Any, ctx: Context) -> int:
        if ctx.attempt < 3:
            raise RuntimeError("again")
        return ctx.attempt

    async with running_app(backend_url, flaky) as (app, _):
        job_id = await app.enqueue("flaky")
        await wait_until(state_is(app, job_id, "completed"), timeout=5)
        job = await app.backend.get_job(job_id)
    assert job is not None and job.result == 3 and job.attempt == 3


async def test_expired_lease_is_reclaimed_and_committed_once(
    backend_url: str, wait_until: Any
) -> None:
    flow = Flow("reclaim")
    runs: list[int] = []

    @flow.entry(emits=["next"])
    async def first(_: Any, ctx: Context) -> None:
        runs.append(ctx.attempt)
        await ctx.emit("next")

    @flow.step(subscribes=["next"])
    async def second(_: Any, ctx: Context) -> str:
        return "done"

    async with running_app(backend_url, flow, worker=False) as (app, _):
        run_id = await app.start("reclaim")
        # A worker that claims the job and dies: its lease expires, nobody renews it.
        (claimed,) = await app.backend.claim("dead-worker", None, 1, lease=0.2)
        assert claimed.id == f"{run_id}:first" and claimed.attempt == 1
        worker = Worker(app.service)
        task = asyncio.create_task(worker.run())
        try:
            view = await app.wait(run_id, timeout=10)
        finally:
            worker.stop()
            await task
        events = await app.backend.read_events(run_id)
    assert view["status"] == "completed"
    assert runs == [2]
    assert types_of(events, "first") == [
        "step.started",
        "step.retrying",
        "step.started",
        "emit",
        "step.completed",
    ]
    assert events[2]["data"]["error"]["type"] == "LeaseExpired"
    assert types_of(events).count("step.completed") == 2


async def test_late_duplicate_completion_is_ignored(backend_url: str) -> None:
    """A worker that lost its lease but still finishes commits nothing a second time."""
    flow = Flow("dupe")

    @flow.entry()
    async def only(_: Any, ctx: Context) -> int:
        return 1

    async with running_app(backend_url, flow) as (app, _):
        run_id = await app.start("dupe")
        await app.wait(run_id, timeout=10)
        before = await app.backend.read_events(run_id)
        graph = app.registry.flows["dupe"]
        job = await app.backend.get_job(f"{run_id}:only")
        assert job is not None
        from flowtide.backends.base import CommitItem

        def decide(record: Any) -> Any:
            return orchestrator.step_succeeded(
                graph, record, job, 2, orchestrator.NO_EFFECTS, 1.0, time.time()
            )

        await app.backend.commit([CommitItem(run_id, decide)])
        after = await app.backend.read_events(run_id)
    assert after == before


async def test_graceful_shutdown_gives_back_unfinished_jobs(backend_url: str) -> None:
    started = asyncio.Event()

    @function(queue="slow")
    async def slow(_: Any, ctx: Context) -> None:
        started.set()
        await asyncio.sleep(60)

    @function(queue="quick")
    async def quick(_: Any, ctx: Context) -> str:
        return "ok"

    config = make_config(backend_url, worker={"shutdown_grace": 0.3})
    async with running_app(backend_url, slow, quick, worker=False, config=config) as (app, _):
        job_id = await app.enqueue("slow")
        worker = Worker(app.service)
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 5)
        t0 = time.monotonic()
        worker.stop()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - t0 < 3
        job = await app.backend.get_job(job_id)
    assert job is not None
    assert job.state == "waiting"
    assert job.attempt == 0  # the interrupted attempt does not count


async def test_stall_detection_only_when_work_is_lost(backend_url: str) -> None:
    flow = Flow("stall")

    @flow.entry()
    async def first(_: Any, ctx: Context) -> None:
        return None

    config = make_config(backend_url, flow={"stall_timeout": 0.0})
    async with running_app(backend_url, flow, worker=False, config=config) as (app, _):
        scheduler = Scheduler(app.service)
        waiting = await app.start("stall")
        lost = await app.start("stall")
        await app.backend.set_paused("stall", True)  # nothing runs: a backlog, not a stall
        assert await app.backend.delete_job(f"{lost}:first")  # an operator deleted the job
        await scheduler.tick()
        assert (await app.backend.get_run(waiting)).status == "running"  # type: ignore[union-attr]
        view = await app.run(lost)
        events = await app.backend.read_events(lost)
    assert view["status"] == "stalled"
    assert types_of(events)[-2:] == ["step.stalled", "flow.stalled"]


async def test_heartbeats_keep_a_long_job_leased(backend_url: str) -> None:
    flow = Flow("longer_than_lease")

    @flow.entry()
    async def slow(_: Any, ctx: Context) -> int:
        await asyncio.sleep(1.2)
        return ctx.attempt

    config = make_config(backend_url, worker={"lease": 0.4})
    async with running_app(backend_url, flow, config=config) as (app, _):
        run_id = await app.start("longer_than_lease")
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["result"] == 1
    assert "step.retrying" not in types_of(events)
