"""An App with an in-process worker on a chosen backend, for engine behaviour tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from flowtide import App, Config
from flowtide.definitions import Flow, FunctionDef
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.worker import Worker
from flowtide.registry import Registry


def make_config(url: str, **sections: dict[str, Any]) -> Config:
    config = Config(backend=url)
    config.worker.lease = 2.0
    config.worker.poll_interval = 0.01
    config.worker.shutdown_grace = 2.0
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    return config


@contextlib.asynccontextmanager
async def running_app(
    url: str,
    *items: Flow | FunctionDef,
    worker: bool = True,
    config: Config | None = None,
    scheduler: bool = False,
    **worker_options: Any,
) -> AsyncIterator[tuple[App, Worker | None]]:
    """``scheduler=True`` also runs the timers (awaits, schedules, emits) every 50 ms."""
    registry = Registry()
    for item in items:
        registry.add(item)
    async with App(config or make_config(url), registry=registry) as app:
        w = Worker(app.service, **worker_options) if worker else None
        task = asyncio.create_task(w.run()) if w is not None else None
        timers = Scheduler(app.service, 0.05, app.trigger_service) if scheduler else None
        timer_task = asyncio.create_task(timers.run()) if timers is not None else None
        try:
            yield app, w
        finally:
            if timers is not None and timer_task is not None:
                timers.stop()
                await asyncio.wait_for(timer_task, 10)
            if w is not None and task is not None:
                w.stop()
                await asyncio.wait_for(task, 10)


def types_of(events: list[dict[str, Any]], step: str | None = None) -> list[str]:
    return [e["type"] for e in events if step is None or e.get("step") == step]
