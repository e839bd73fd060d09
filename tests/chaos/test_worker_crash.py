"""A worker process is SIGKILLed while a step runs, on every backend processes share: the run
still completes, the step runs again, and every completion is recorded exactly once (DESIGN A10
items 1 and 2)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flowtide import App, load_config
from tests._backends import FACTORIES, BackendFactory
from tests._processes import flowtide_processes, write_app

SHARED = [f for f in FACTORIES if f.shared_url]

APP = textwrap.dedent(
    """
    import asyncio
    from pathlib import Path

    from flowtide import Context, Flow

    OUT = Path(__file__).resolve().parent.parent
    crashy = Flow("crashy")


    @crashy.entry(emits=["go"])
    async def begin(_, ctx: Context) -> None:
        await ctx.emit("go", {"n": 1})


    @crashy.step(subscribes=["go"])
    async def slow(event, ctx: Context) -> str:
        (OUT / f"slow-attempt-{ctx.attempt}").write_text(str(ctx.attempt))
        if ctx.attempt == 1:
            await asyncio.sleep(120)  # killed here
        return "survived"


    @crashy.step(subscribes=["step:slow"])
    async def after(result, ctx: Context) -> str:
        with open(OUT / "after-runs", "a") as fh:
            fh.write("ran\\n")
        return result
    """
)


@pytest.fixture(params=SHARED, ids=[f.name for f in SHARED])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    factory: BackendFactory = request.param
    reason = factory.skip()
    if reason:
        pytest.skip(reason)
    (tmp_path / "db").mkdir()
    url = factory.url(tmp_path / "db")
    yield url
    await factory.cleanup(url)


async def test_sigkilled_worker_loses_nothing_and_commits_once(
    tmp_path: Path, shared_url: str, wait_until: Any
) -> None:
    write_app(tmp_path, APP, shared_url, ["[worker]", 'lease = "1s"'])
    config = load_config(root=tmp_path, path=tmp_path / "flowtide.toml")
    with flowtide_processes(tmp_path) as procs:
        async with App(config) as app:
            first = procs.start("worker", name="worker-a")
            run_id = await app.start("crashy")
            marker = tmp_path / "slow-attempt-1"
            await wait_until(marker.exists, timeout=30, what="the step to start")
            first.kill()  # SIGKILL while `slow` is executing
            assert first.popen.wait(10) == -9
            procs.start("worker", name="worker-b")
            view = await app.wait(run_id, timeout=60)
            events = await app.backend.read_events(run_id)
            jobs = [await app.backend.get_job(f"{run_id}:{s}") for s in ("begin", "slow", "after")]
    assert view["status"] == "completed", view
    assert (tmp_path / "slow-attempt-2").exists()
    completed = [e["step"] for e in events if e["type"] == "step.completed"]
    assert sorted(completed) == ["after", "begin", "slow"]
    terminal = [e["type"] for e in events if e["type"] in ("flow.completed", "flow.failed")]
    assert terminal == ["flow.completed"]
    assert (tmp_path / "after-runs").read_text() == "ran\n"
    lost = [e for e in events if e["type"] == "step.retrying" and e["step"] == "slow"]
    assert lost and lost[0]["data"]["error"]["type"] == "LeaseExpired"
    assert [(j.name, j.state, j.attempt, j.reclaims) for j in jobs if j is not None] == [
        ("begin", "completed", 1, 0),
        ("slow", "completed", 2, 1),
        ("after", "completed", 1, 0),
    ]
