"""runtime="node" steps and functions inside a real worker, through sdks/node."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flowtide import Context, Flow, function
from flowtide.engine.worker import Worker
from flowtide.runtimes import PoolOptions
from tests.integration._engine_harness import running_app
from tests.runtimes._util import assert_no_leftovers, process_state

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
URL = "memory://"

RESIZE = """
export default async function resize(input, ctx) {
  console.log(`resizing ${input.id}`);
  ctx.log.info('sizes', { w: 10 });
  const order = await ctx.state.get('order');
  await ctx.state.set('resized', { id: order.id, attempt: ctx.attempt });
  await ctx.emit('image.resized', { id: order.id });
  return { id: order.id, runId: ctx.runId, flow: ctx.flow, step: ctx.step, attempt: ctx.attempt };
}
"""

CRASHY = """
export default async function (input, ctx) {
  if (ctx.attempt === 1) process.kill(process.pid, 'SIGKILL');
  return { attempt: ctx.attempt, pid: process.pid };
}
"""

HANG = "export default () => new Promise(() => {});\n"


def _spawned(worker: Worker | None) -> list[int]:
    assert worker is not None
    return [pid for pool in worker.runtimes.pools for pid in pool.spawned]


async def _job(app: Any, job_id: str, wait_until: Any) -> Any:
    async def done() -> Any:
        job = await app.backend.get_job(job_id)
        return job if job is not None and job.state in ("completed", "failed") else None

    return await wait_until(done, timeout=20)


async def test_a_node_step_gets_input_and_the_full_context(tmp_path: Path) -> None:
    (tmp_path / "resize.mjs").write_text(RESIZE)
    shop = Flow("shop")

    @shop.entry(emits=["order.accepted"])
    async def accept(order: dict[str, Any], ctx: Context) -> None:
        await ctx.state.set("order", order)
        await ctx.emit("order.accepted", order)

    shop.step(
        "resize",
        runtime="node",
        handler=str(tmp_path / "resize.mjs"),
        subscribes=["order.accepted"],
        emits=["image.resized"],
    )

    @shop.step(subscribes=["image.resized"])
    async def after(event: dict[str, Any], ctx: Context) -> Any:
        return await ctx.state.get("resized")

    async with running_app(URL, shop) as (app, worker):
        run_id = await app.start("shop", {"id": 9})
        view = await app.wait(run_id, timeout=30)
        events = await app.backend.read_events(run_id)
        pids = _spawned(worker)
    assert view["status"] == "completed", view
    result = view["steps"]["resize"]["result"]
    assert result == {"id": 9, "runId": run_id, "flow": "shop", "step": "resize", "attempt": 1}
    assert view["steps"]["after"]["result"] == {"id": 9, "attempt": 1}
    logs = [e["data"] for e in events if e["type"] == "log" and e["step"] == "resize"]
    assert {"level": "info", "message": "sizes", "fields": {"w": 10}} in logs
    assert any(d["message"] == "resizing 9" for d in logs)
    assert_no_leftovers(pids)


async def test_a_node_function_crash_is_retried_on_a_fresh_child(
    tmp_path: Path, wait_until: Any
) -> None:
    (tmp_path / "crashy.mjs").write_text(CRASHY)
    crashy = function("crashy", runtime="node", handler=str(tmp_path / "crashy.mjs"), retries=2)
    async with running_app(URL, crashy) as (app, worker):
        job = await _job(app, await app.enqueue("crashy", {}), wait_until)
        pids = _spawned(worker)
    assert job.state == "completed", job
    assert job.result["attempt"] == 2 and len(pids) == 2
    assert_no_leftovers(pids)


async def test_a_hung_node_invocation_is_canceled_at_the_timeout_and_the_child_kept(
    tmp_path: Path, wait_until: Any
) -> None:
    (tmp_path / "hang.mjs").write_text(HANG)
    (tmp_path / "pid.mjs").write_text("export default async () => process.pid;\n")
    hang = function("hang", runtime="node", handler=str(tmp_path / "hang.mjs"), timeout="300ms")
    pid = function("pid", runtime="node", handler=str(tmp_path / "pid.mjs"))
    runtimes = {"node": PoolOptions(size=1)}
    async with running_app(URL, hang, pid, runtimes=runtimes) as (app, worker):
        before = await _job(app, await app.enqueue("pid", {}), wait_until)
        job = await _job(app, await app.enqueue("hang", {}), wait_until)
        after = await _job(app, await app.enqueue("pid", {}), wait_until)
        pids = _spawned(worker)
    assert job.state == "failed"
    assert job.error["type"] == "Timeout" and "canceled" in job.error["message"]
    assert before.result == after.result and pids == [before.result]  # no child was killed
    assert_no_leftovers(pids)


async def test_worker_shutdown_stops_idle_node_children(tmp_path: Path, wait_until: Any) -> None:
    (tmp_path / "ok.mjs").write_text("export default async (x) => x;\n")
    echo = function("echo", runtime="node", handler=str(tmp_path / "ok.mjs"))
    async with running_app(URL, echo) as (app, worker):
        job = await _job(app, await app.enqueue("echo", [1, 2]), wait_until)
        pids = _spawned(worker)
        assert all(process_state(pid) for pid in pids)  # warm while the worker runs
    assert job.result == [1, 2]
    assert_no_leftovers(pids)
