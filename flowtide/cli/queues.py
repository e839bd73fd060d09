"""``flowtide queues list`` and ``flowtide jobs list|retry``."""

from __future__ import annotations

from typing import Annotated

import typer

from flowtide.backends.base import JOB_STATES
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
from flowtide.cli._render import error_text, short, styled, table

__all__ = ["jobs", "queues"]

queues = typer.Typer(help="Inspect job queues.", no_args_is_help=True)
jobs = typer.Typer(help="List and retry jobs.", no_args_is_help=True)

COUNT_KEYS = ("waiting", "active", "delayed", "completed", "failed")


@queues.command("list")
def list_queues(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List queues (those in the backend and those the app's definitions use) with job counts."""

    async def go() -> None:
        async with open_app(load(config, app, backend)) as opened:
            counts = await opened.backend.queue_counts()
            paused = await opened.backend.paused_queues()
            names = sorted(set(counts) | set(opened.registry.queues()) | paused)
        per_queue = {
            name: {**dict.fromkeys(COUNT_KEYS, 0), **counts.get(name, {})} for name in names
        }
        items = [
            {"name": name, "counts": per_queue[name], "paused": name in paused} for name in names
        ]
        if as_json:
            print_json({"items": items, "next_cursor": None})
            return
        if not items:
            stdout.print("no queues")
            return
        rows = [
            [name, *(str(per_queue[name][k]) for k in COUNT_KEYS), "yes" if name in paused else ""]
            for name in names
        ]
        stdout.print(table(["QUEUE", *(k.upper() for k in COUNT_KEYS), "PAUSED"], rows))

    run(go())


@jobs.command("list", no_args_is_help=True)
def list_jobs(
    queue: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")],
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="STATE", help=f"Only jobs in this state: {', '.join(JOB_STATES)}."
        ),
    ] = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List a queue's jobs."""
    if state is not None and state not in JOB_STATES:
        fail(f"unknown job state {state!r}: use one of {', '.join(JOB_STATES)}", EXIT_USAGE)

    async def go() -> None:
        async with open_app(load(config, None, backend), definitions=False) as opened:
            page = await opened.backend.list_jobs(queue, state, limit, cursor)
        items = [job.to_json() for job in page.items]
        if as_json:
            print_json({"items": items, "next_cursor": page.next_cursor})
            return
        if not items:
            stdout.print(f"no jobs in queue {queue}" + (f" in state {state}" if state else ""))
            return
        rows = [
            [
                j["job_id"],
                j["name"],
                styled(j["state"]),
                str(j["attempt"]),
                (j["created_at"] or "").replace("T", " ")[:19],
                short(error_text(j["error"]), 60) if j["error"] else "",
            ]
            for j in items
        ]
        stdout.print(table(["JOB ID", "NAME", "STATE", "ATTEMPT", "CREATED", "ERROR"], rows))
        if page.next_cursor:
            stdout.print(f"more: --cursor {page.next_cursor}", style="dim")

    run(go())


@jobs.command("retry", no_args_is_help=True)
def retry_job(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Retry a failed or canceled job (a step job only while its run is still active)."""

    async def go() -> None:
        async with open_app(load(config, None, backend), definitions=False) as opened:
            await opened.service.retry_job(job_id)
        if as_json:
            print_json({"job_id": job_id, "state": "waiting"})
        else:
            stdout.print(f"retrying {job_id}")

    run(go())
