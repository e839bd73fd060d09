"""``flowtide runs list|show|follow|cancel|restart``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from flowtide.cli._common import (
    EXIT_USAGE,
    AppOpt,
    BackendOpt,
    ConfigOpt,
    CursorOpt,
    JsonOpt,
    LimitOpt,
    fail,
    load,
    open_app,
    print_json,
    run,
    stdout,
)
from flowtide.cli._follow import EXIT_BY_STATUS, watch
from flowtide.cli._render import error_text, event_line, short, styled, table
from flowtide.events import ACTIVE_STATUSES, TERMINAL_STATUSES

__all__ = ["runs"]

runs = typer.Typer(help="List, inspect, follow, cancel and restart runs.", no_args_is_help=True)

RunIdArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run id.")]
STATUSES = sorted(ACTIVE_STATUSES | TERMINAL_STATUSES)


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    took = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{took * 1000:.0f}ms" if took < 1 else f"{took:.1f}s"


def _when(ts: str | None) -> str:
    return (ts or "").replace("T", " ").rstrip("Z")[:19]


@runs.command("list")
def list_runs(
    flow: Annotated[
        str | None, typer.Option("--flow", metavar="FLOW", help="Only runs of this flow.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", metavar="STATUS", help=f"Only runs in this status: {', '.join(STATUSES)}."
        ),
    ] = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List runs, newest first."""
    if status is not None and status not in STATUSES:
        fail(f"unknown status {status!r}: use one of {', '.join(STATUSES)}", EXIT_USAGE)

    async def go() -> None:
        async with open_app(load(config, None, backend), definitions=False) as app:
            page = await app.backend.list_runs(flow, status, limit, cursor)
        items = [record.summary() for record in page.items]
        if as_json:
            print_json({"items": items, "next_cursor": page.next_cursor})
            return
        if not items:
            stdout.print("no runs")
            return
        rows = [
            [
                r["run_id"],
                r["flow"],
                styled(r["status"]),
                _when(r["started_at"]),
                _duration(r["started_at"], r["completed_at"]),
                (r["trigger"] or {}).get("name", "") if isinstance(r["trigger"], dict) else "",
            ]
            for r in items
        ]
        stdout.print(table(["RUN ID", "FLOW", "STATUS", "STARTED", "TOOK", "TRIGGER"], rows))
        if page.next_cursor:
            stdout.print(f"more: --cursor {page.next_cursor}", style="dim")

    run(go())


def _await_rows(awaits: list[dict[str, Any]]) -> list[list[str | Text]]:
    """One row per await; a pending one shows its deadline and (webhook) URL to call."""
    rows: list[list[str | Text]] = []
    for item in awaits:
        pending = item.get("status") == "pending"
        kind = str(item.get("type") or "")
        if kind == "event" and item.get("event"):
            kind = f"event {item['event']}"
        elif kind == "webhook" and item.get("method"):
            kind = f"webhook {item['method']}"
        rows.append(
            [
                str(item.get("await_id") or ""),
                f"{item.get('step')} ({item.get('position', '')})",
                kind,
                styled(item.get("status")),
                _when(item.get("deadline")) if pending else "",
                str(item.get("url") or "") if pending else "",
            ]
        )
    return rows


def _print_view(view: dict[str, Any], events: list[dict[str, Any]] | None) -> None:
    head = Text.assemble(("run ", "bold"), view["run_id"], "  ", styled(view["status"]))
    stdout.print(head)
    stdout.print(f"flow       {view['flow']}")
    stdout.print(f"started    {_when(view['started_at'])}")
    if view.get("completed_at"):
        took = _duration(view["started_at"], view["completed_at"])
        stdout.print(f"completed  {_when(view['completed_at'])}  ({took})")
    if view.get("trigger"):
        stdout.print(f"trigger    {short(view['trigger'], 100)}")
    stdout.print(f"input      {short(view.get('input'), 100)}")
    if view.get("result") is not None:
        stdout.print(f"result     {short(view['result'], 100)}")
    error = view.get("error")
    if error is not None:
        stdout.print(f"error      {error_text(error)}", style="red")
        if isinstance(error, dict) and isinstance(error.get("traceback"), str):
            stdout.print(error["traceback"].rstrip(), style="dim")
    steps = view.get("steps") or {}
    if steps:
        rows = [
            [
                name,
                styled(step["status"]),
                str(step["attempts"]),
                _duration(step["started_at"], step["completed_at"]),
                error_text(step["error"]) if step.get("error") else short(step.get("result")),
            ]
            for name, step in steps.items()
        ]
        stdout.print()
        stdout.print(table(["STEP", "STATUS", "ATTEMPTS", "TOOK", "RESULT / ERROR"], rows))
    awaits = view.get("awaits") or []
    if awaits:
        stdout.print()
        stdout.print(
            table(["AWAIT", "STEP", "TYPE", "STATUS", "DEADLINE", "URL"], _await_rows(awaits))
        )
    if events is not None:
        stdout.print()
        for event in events:
            stdout.print(event_line(event))


@runs.command("show", no_args_is_help=True)
def show_run(
    run_id: RunIdArg,
    events: Annotated[bool, typer.Option("--events", help="Include the run's events.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Show one run: status, steps, result or error (and its events)."""

    async def go() -> None:
        async with open_app(load(config, None, backend), definitions=False) as app:
            view = await app.service.view(run_id)
            history = await app.backend.read_events(run_id) if events else None
        if as_json:
            print_json({**view, "events": history} if history is not None else view)
        else:
            _print_view(view, history)

    run(go())


@runs.command("follow", no_args_is_help=True)
def follow_run(
    run_id: RunIdArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON line.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Give up after SECONDS (exit 124)."),
    ] = None,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Print the run's events as they arrive until it ends.

    Exits 0 when the run completed, 1 when it failed, 2 when it was canceled or stalled.
    """

    async def go() -> int:
        async with open_app(load(config, None, backend), definitions=False) as app:
            status = await watch(
                app,
                run_id,
                out=None if as_json else stdout,
                on_event=print_json if as_json else None,
                timeout=timeout,
            )
        return EXIT_BY_STATUS.get(status, 2)

    raise typer.Exit(run(go()))


@runs.command("cancel", no_args_is_help=True)
def cancel_run(
    run_id: RunIdArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Cancel a running or awaiting run."""

    async def go() -> None:
        async with open_app(load(config, None, backend), definitions=False) as app:
            await app.cancel(run_id)
        if as_json:
            print_json({"run_id": run_id, "status": "canceled"})
        else:
            stdout.print(f"canceled {run_id}")

    run(go())


@runs.command("restart", no_args_is_help=True)
def restart_run(
    run_id: RunIdArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Start a new run with the same input (canceling the old one if it is still active)."""

    async def go() -> None:
        async with open_app(load(config, app, backend)) as opened:
            new_id = await opened.restart(run_id)
        if as_json:
            print_json({"run_id": new_id, "restarted": run_id})
        else:
            stdout.print(new_id)

    run(go())
