"""Fault test on Redis (issue 3, 4a): three worker processes and one server run 2,000 runs of
a five-step flow with fan-out and fan-in while one worker is SIGKILLed and restarted every
couple of seconds. Every run completes, every step has exactly one step.completed and every
run exactly one terminal event (DESIGN A10 items 1 and 2)."""

from __future__ import annotations

import asyncio
import re
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtide import App, load_config
from tests import _backend_redis
from tests._processes import Proc, flowtide_processes, write_app

pytestmark = pytest.mark.slow

RUNS = 2000
STEPS = ["split", "left", "right", "join", "finish"]
DEADLINE = 150.0  # seconds for the whole load, kills included
KILL_EVERY = 1.5

APP = textwrap.dedent(
    """
    import asyncio
    import random

    from flowtide import Context, Flow

    soak = Flow("soak")


    @soak.entry(emits=["split"])
    async def split(n: int, ctx: Context) -> int:
        await ctx.emit("split", n)
        return n


    @soak.step(subscribes=["split"])
    async def left(n: int, ctx: Context) -> int:
        await asyncio.sleep(random.random() * 0.005)
        return n * 2


    @soak.step(subscribes=["split"])
    async def right(n: int, ctx: Context) -> int:
        await asyncio.sleep(random.random() * 0.005)
        return n * 3


    @soak.step(subscribes=["step:left", "step:right"])
    async def join(parts: dict, ctx: Context) -> int:
        return parts["step:left"] + parts["step:right"]


    @soak.step(subscribes=["step:join"])
    def finish(total: int, ctx) -> int:
        return total
    """
)


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    reason = _backend_redis.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_redis.url(tmp_path)
    yield url
    await _backend_redis.cleanup(url)


async def test_sigkilled_workers_under_load_lose_nothing_and_commit_once(
    tmp_path: Path, redis_url: str
) -> None:
    extra = ["[worker]", 'lease = "1s"', "concurrency = 50"]
    write_app(tmp_path, APP, redis_url, extra)
    config = load_config(root=tmp_path, path=tmp_path / "flowtide.toml")
    started = time.monotonic()
    with flowtide_processes(tmp_path) as procs:
        server = procs.start("serve", "--port", "0", name="serve")
        workers = [procs.start("worker", name=f"worker{i}") for i in range(3)]
        server.wait_for_output("http://")
        match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
        assert match, server.output()
        async with App(config) as app:
            starter = asyncio.create_task(_start_runs(f"http://127.0.0.1:{match.group(1)}", RUNS))
            kills = await _kill_until_done(app, procs, workers, starter, started + DEADLINE)
            run_ids = await starter
            histories = await asyncio.gather(*(app.backend.read_events(r) for r in run_ids))
        assert server.popen.poll() is None, server.output()
    assert kills >= 3, "the load ended before workers were killed a few times"
    for run_id, events in zip(run_ids, histories, strict=True):
        completed = sorted(e["step"] for e in events if e["type"] == "step.completed")
        assert completed == sorted(STEPS), (run_id, [e["type"] for e in events])
        terminal = [e["type"] for e in events if e["type"].startswith("flow.")][1:]
        assert terminal == ["flow.completed"], (run_id, terminal)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def _start_runs(base: str, n: int) -> list[str]:
    """Start ``n`` runs through the server's API, 50 requests at a time."""
    gate = asyncio.Semaphore(50)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one(i: int) -> str:
            async with gate:
                res = await client.post("/api/flows/soak/runs", json={"input": i})
                assert res.status_code == 201, res.text
                run_id: str = res.json()["run_id"]
                return run_id

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _kill_until_done(
    app: App, procs: Any, workers: list[Proc], starter: asyncio.Task[Any], deadline: float
) -> int:
    """SIGKILL one worker (in turn) every KILL_EVERY seconds and start a new one in its
    place, until every run was started and none is running; return the number of kills."""
    kills = 0
    next_kill = time.monotonic() + KILL_EVERY
    while True:
        if starter.done():
            starter.result()  # a failed start fails the test here
            page = await app.backend.list_runs(status="running", limit=1)
            if not page.items:
                return kills
        now = time.monotonic()
        assert now < deadline, f"runs still running after {DEADLINE}s ({kills} kills)"
        if now >= next_kill:
            victim = workers[kills % len(workers)]
            victim.kill()
            victim.popen.wait(10)
            workers[kills % len(workers)] = procs.start("worker", name=f"worker-r{kills}")
            kills += 1
            next_kill = now + KILL_EVERY
        await asyncio.sleep(0.1)
