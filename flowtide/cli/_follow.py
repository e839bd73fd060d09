"""Following a run: its events as they arrive, until its terminal event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from typing import Any

from rich.console import Console
from rich.text import Text

from flowtide.app import App
from flowtide.cli._common import EXIT_TIMEOUT, CliError
from flowtide.cli._render import event_line
from flowtide.engine.runs import NotFound
from flowtide.events import Event

__all__ = ["EXIT_BY_STATUS", "follow", "watch"]

EXIT_BY_STATUS = {"completed": 0, "failed": 1, "canceled": 2, "stalled": 2}
TERMINAL_EVENTS = {"flow.completed", "flow.failed", "flow.canceled", "flow.stalled"}
POLL = 0.5


async def follow(app: App, run_id: str) -> AsyncIterator[Event]:
    """Yield the run's events from the first, live, ending with its terminal event."""
    backend = app.backend
    if await backend.get_run(run_id) is None:
        raise NotFound(f"unknown run {run_id!r}")
    after = 0
    ended_seen = False
    while True:
        events = await backend.read_events(run_id, after=after)
        for event in events:
            after = event["seq"]
            yield event
            if event["type"] in TERMINAL_EVENTS:
                return
        if events:
            continue
        record = await backend.get_run(run_id)
        if record is None:
            raise NotFound(f"run {run_id!r} was deleted")
        if record.terminal:
            if ended_seen:
                return  # terminal without a terminal event: nothing more will come
            ended_seen = True  # read once more: the terminal event was committed with it
            continue
        await backend.wait_for_change(POLL)


async def watch(
    app: App,
    run_id: str,
    *,
    out: Console | None,
    show: Callable[[Event], bool] = lambda _: True,
    on_event: Callable[[Event], None] | None = None,
    timeout: float | None = None,
    spinner: Console | None = None,
) -> str:
    """Follow the run, printing the events ``show`` accepts to ``out``; return its status.

    ``spinner`` (a TTY console) shows what the run is doing between events.
    """
    status_ctx: Any = (
        spinner.status(Text(f"run {run_id} running…")) if spinner is not None else nullcontext()
    )
    try:
        async with asyncio.timeout(timeout):
            with status_ctx as status:
                async for event in follow(app, run_id):
                    if on_event is not None:
                        on_event(event)
                    if out is not None and show(event):
                        out.print(event_line(event))
                    if status is not None and event["type"] == "step.started":
                        status.update(Text(f"run {run_id}: {event.get('step')} running…"))
    except TimeoutError:
        raise CliError(f"run {run_id} is still running after {timeout:g}s", EXIT_TIMEOUT) from None
    record = await app.backend.get_run(run_id)
    if record is None:
        raise NotFound(f"unknown run {run_id!r}")
    return record.status
