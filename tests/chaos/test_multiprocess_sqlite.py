"""One `serve` and two `worker` processes share one SQLite file (DESIGN B3)."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import httpx

from tests._processes import flowtide_processes, write_app

APP = textwrap.dedent(
    """
    import asyncio
    import os

    from flowtide import Context, Flow

    shared = Flow("shared")


    @shared.entry(emits=["half"])
    async def first(n: int, ctx: Context) -> int:
        await asyncio.sleep(0.02)
        await ctx.state.set("pid", os.getpid())
        await ctx.emit("half", n)
        return os.getpid()


    @shared.step(subscribes=["half"])
    def second(n: int, ctx) -> dict:
        return {"n": n, "pid": os.getpid(), "first_pid": ctx.state.get("pid")}
    """
)


def test_one_server_and_two_workers_share_a_sqlite_file(tmp_path: Path) -> None:
    write_app(tmp_path, APP, "sqlite:///flowtide.db", ["[worker]", "concurrency = 2"])
    with flowtide_processes(tmp_path) as procs:
        server = procs.start("serve", "--port", "0", name="serve")
        workers = [procs.start("worker", name=f"worker{i}") for i in range(2)]
        server.wait_for_output("http://")
        match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
        assert match, server.output()
        base = f"http://127.0.0.1:{match.group(1)}"
        with httpx.Client(base_url=base, timeout=10) as client:
            run_ids = [
                client.post("/api/flows/shared/runs", json={"input": i}).json()["run_id"]
                for i in range(40)
            ]
            views = [_wait_done(client, run_id) for run_id in run_ids]
            events = [client.get(f"/api/runs/{r}/events").json()["items"] for r in run_ids]
        for proc in workers:
            assert proc.stop() == 0, proc.output()
        assert server.stop() == 0, server.output()
    assert all(v["status"] == "completed" for v in views)
    assert sorted(v["result"]["n"] for v in views) == list(range(40))
    pids = {v["result"]["pid"] for v in views} | {v["steps"]["first"]["result"] for v in views}
    assert pids == {w.pid for w in workers}, "both workers took jobs"
    for history in events:
        kinds = [e["type"] for e in history]
        assert kinds.count("step.completed") == 2
        assert kinds.count("flow.completed") == 1
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))


def _wait_done(client: httpx.Client, run_id: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, object] = client.get(f"/api/runs/{run_id}").json()
        if view["status"] not in ("running", "awaiting"):
            return view
        assert time.monotonic() < deadline, f"run {run_id} still {view['status']}"
        time.sleep(0.05)
