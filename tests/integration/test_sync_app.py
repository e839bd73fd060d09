"""SyncApp: the same client API as App, blocking, for scripts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from flowtide import App, Config, Context, Flow, NotFound, SyncApp, function
from flowtide.engine.worker import Worker
from flowtide.registry import Registry


def test_sync_app_starts_waits_enqueues_and_emits(tmp_path: Path) -> None:
    flow = Flow("sync_demo")

    @flow.entry()
    async def double(n: int, ctx: Context) -> int:
        return n * 2

    @function(queue="sync_jobs")
    def echo(value: Any, ctx: Any) -> Any:
        return value

    registry = Registry()
    registry.add(flow)
    registry.add(echo)
    config = Config(backend=f"sqlite:///{tmp_path / 'db.sqlite'}")
    config.worker.poll_interval = 0.01

    app = SyncApp(App(config, registry=registry))
    with app:
        worker = Worker(app._app.service)
        done = threading.Event()
        app._loop.call_soon_threadsafe(lambda: app._loop.create_task(_run(worker, done)))
        try:
            run_id = app.start("sync_demo", 21)
            view = app.wait(run_id, timeout=10)
            assert view["status"] == "completed" and view["result"] == 42
            assert app.run(run_id)["result"] == 42
            job_id = app.enqueue("echo", {"x": 1}, key="k1")
            assert app.enqueue("echo", {"x": 2}, key="k1") == job_id
            assert app.emit("nobody.listens") == []
            with pytest.raises(NotFound):
                app.triggers.fire("anything")
        finally:
            app._loop.call_soon_threadsafe(worker.stop)
            assert done.wait(10)


async def _run(worker: Worker, done: threading.Event) -> None:
    try:
        await worker.run()
    finally:
        done.set()
