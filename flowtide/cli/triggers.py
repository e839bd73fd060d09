"""``flowtide triggers list|show|fire|pause|resume|delete|fires``.

Like the HTTP API, these open the app (its definitions bring code-declared triggers into the
registry; ``fire`` starts the subscribed flows, so their code must load).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from flowtide.cli._common import (
    EXIT_FAILED,
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
    stderr,
    stdout,
)
from flowtide.cli._render import short, styled, table
from flowtide.cli.start import parse_input
from flowtide.engine.schedules import ScheduleService
from flowtide.engine.triggers import FireRequest, TriggerService

__all__ = ["triggers"]

triggers = typer.Typer(
    help="List, inspect, fire, pause, resume and delete triggers.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The trigger's name.")]
_INTERNAL = ("code_hash", "def_hash")


async def _describe(
    service: TriggerService,
    doc: dict[str, Any],
    base_url: str,
    schedules: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What ``GET /api/triggers/{name}`` answers: the document, stats, URL or occurrences."""
    item = {k: v for k, v in doc.items() if k not in _INTERNAL}
    item["stats"] = await service.stats(doc["name"])
    if doc["type"] == "webhook":
        item["url"] = f"{base_url.rstrip('/')}/hooks/{quote(doc['name'], safe='')}"
    if doc["type"] == "schedule":
        if schedules is None:
            schedules = {s["name"]: s for s in await ScheduleService(service).list()}
        state = schedules.get(doc["name"]) or {}
        item["next_at"] = state.get("next_at")
        item["last_at"] = state.get("last_at")
        item["missed"] = state.get("missed", 0)
    return item


def _when(ts: str | None) -> str:
    return (ts or "").replace("T", " ").rstrip("Z")[:19]


def _subscribers(item: dict[str, Any]) -> str:
    subs = item.get("subscriptions") or {}
    return ", ".join(
        flow + ("" if sub.get("mode", "auto") == "auto" else " (manual)")
        for flow, sub in sorted(subs.items())
    )


def _spec(item: dict[str, Any]) -> str:
    """A trigger's defining option in a few characters: cron, interval, method, event."""
    options = item.get("options") or {}
    if item["type"] == "schedule":
        if options.get("cron"):
            return f"{options['cron']} {options.get('tz', 'UTC')}"
        return f"every {options.get('every'):g}s"
    if item["type"] == "webhook":
        auth = options.get("auth") or {}
        method = str(options.get("method") or "POST")
        return method + (f" {auth['kind']}" if auth.get("kind") else "")
    return ""


@triggers.command("list")
def list_triggers(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List triggers: type, status, subscribers, fires; next/last occurrence of schedules."""

    async def go() -> list[dict[str, Any]]:
        async with open_app(load(config, app, backend)) as opened:
            service = opened.trigger_service
            docs = await service.all()
            schedules = None
            if any(doc["type"] == "schedule" for doc in docs):
                schedules = {s["name"]: s for s in await ScheduleService(service).list()}
            base = opened.config.base_url
            return [await _describe(service, doc, base, schedules) for doc in docs]

    items = run(go())
    if as_json:
        print_json({"items": items, "next_cursor": None})
        return
    if not items:
        stdout.print("no triggers")
        return
    rows = [
        [
            t["name"],
            t["type"],
            styled(t["status"]),
            _subscribers(t),
            str(t["stats"]["fires"]),
            _spec(t),
            _when(t.get("next_at")),
            _when(t.get("last_at") or t["stats"]["last_fire_at"]),
        ]
        for t in items
    ]
    columns = ["TRIGGER", "TYPE", "STATUS", "SUBSCRIBERS", "FIRES", "SPEC", "NEXT", "LAST"]
    stdout.print(table(columns, rows))


def _print_trigger(t: dict[str, Any]) -> None:
    stdout.print(f"trigger      {t['name']}", style="bold")
    stdout.print(f"type         {t['type']}")
    stdout.print("status       ", styled(t["status"]), sep="")
    stdout.print(f"source       {t.get('source', '')}")
    if t.get("description"):
        stdout.print(f"description  {t['description']}")
    spec = _spec(t)
    if spec:
        stdout.print(f"spec         {spec}")
    if t.get("url"):
        stdout.print(f"url          {t['url']}")
    options = {k: v for k, v in (t.get("options") or {}).items() if v is not None}
    if options:
        stdout.print(f"options      {short(options, 200)}")
    if t.get("schema"):
        stdout.print(f"schema       {short(t['schema'], 200)}")
    stdout.print(f"subscribers  {_subscribers(t) or '(none)'}")
    if t["type"] == "schedule":
        stdout.print(f"next         {_when(t.get('next_at')) or '-'}")
        stdout.print(f"last         {_when(t.get('last_at')) or '-'}")
        if t.get("missed"):
            stdout.print(f"missed       {t['missed']}")
    stats = t["stats"]
    stdout.print(
        f"fires        {stats['fires']} (runs started {stats['runs_started']}, "
        f"failures {stats['failures']}, skipped {stats['skipped']})"
    )
    if stats.get("last_fire_at"):
        stdout.print(f"last fire    {_when(stats['last_fire_at'])}")


@triggers.command("show", no_args_is_help=True)
def show_trigger(
    name: NameArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Show one trigger: options, JSON schema, subscribers, status and stats."""

    async def go() -> dict[str, Any]:
        async with open_app(load(config, app, backend)) as opened:
            service = opened.trigger_service
            return await _describe(service, await service.get(name), opened.config.base_url)

    item = run(go())
    if as_json:
        print_json(item)
    else:
        _print_trigger(item)


@triggers.command("fire", no_args_is_help=True)
def fire_trigger(
    name: NameArg,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="JSON|@FILE",
            help="The payload: inline JSON, @file.json, or @- for stdin.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Fire a trigger: starts every flow subscribed to it (mode auto).

    Prints the fire id, then one line per run started. Exits 1 if a subscriber failed to start.
    """
    payload = parse_input(input)

    async def go() -> dict[str, Any]:
        async with open_app(load(config, app, backend)) as opened:
            return await opened.trigger_service.fire(name, FireRequest(payload, "api"))

    record = run(go())
    if as_json:
        print_json(record)
    else:
        stdout.print(record["fire_id"])
        for flow, run_id in sorted((record.get("runs") or {}).items()):
            stdout.print(f"started {flow} {run_id}")
        for item in record.get("skipped") or []:
            stdout.print(f"skipped {item['flow']}: {item['reason']}", style="dim")
    for item in record.get("failed") or []:
        stderr.print(f"flowtide: {item['flow']} did not start: {item['error']}")
    if record.get("failed"):
        raise typer.Exit(EXIT_FAILED)


def _set_status(
    name: str,
    paused: bool,
    as_json: bool,
    config: Any,
    app: list[str] | None,
    backend: str | None,
) -> None:
    async def go() -> dict[str, Any]:
        async with open_app(load(config, app, backend)) as opened:
            service = opened.trigger_service
            doc = await service.set_status(name, paused)
            return await _describe(service, doc, opened.config.base_url)

    item = run(go())
    if as_json:
        print_json(item)
    else:
        stdout.print(f"{'paused' if paused else 'resumed'} {name}")


@triggers.command("pause", no_args_is_help=True)
def pause_trigger(
    name: NameArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Pause a trigger: fires and webhooks answer 409, a schedule stops firing."""
    _set_status(name, True, as_json, config, app, backend)


@triggers.command("resume", no_args_is_help=True)
def resume_trigger(
    name: NameArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Resume a paused trigger."""
    _set_status(name, False, as_json, config, app, backend)


@triggers.command("delete", no_args_is_help=True)
def delete_trigger(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Delete a trigger (one declared in code comes back when the app starts again)."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"deleting trigger {name} needs --yes when not run interactively", EXIT_USAGE)
        typer.confirm(f"Delete trigger {name}?", abort=True)

    async def go() -> None:
        async with open_app(load(config, app, backend)) as opened:
            await opened.trigger_service.delete(name)

    run(go())
    if as_json:
        print_json({"name": name, "deleted": True})
    else:
        stdout.print(f"deleted {name}")


@triggers.command("fires", no_args_is_help=True)
def list_fires(
    name: NameArg,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List a trigger's fires, newest first."""

    async def go() -> tuple[list[dict[str, Any]], str | None]:
        async with open_app(load(config, app, backend)) as opened:
            return await opened.trigger_service.fires(name, limit, cursor)

    items, next_cursor = run(go())
    if as_json:
        print_json({"items": items, "next_cursor": next_cursor})
        return
    if not items:
        stdout.print(f"no fires of trigger {name}")
        return
    rows = [
        [
            f["fire_id"],
            _when(f.get("ts")),
            f.get("source", "") + (f" of {f['replay_of']}" if f.get("replay_of") else ""),
            ", ".join(f.get("run_ids") or []),
            short(f.get("payload"), 50),
            ", ".join(
                [f"skipped {s['flow']}" for s in f.get("skipped") or []]
                + [f"failed {s['flow']}" for s in f.get("failed") or []]
            ),
        ]
        for f in items
    ]
    stdout.print(table(["FIRE ID", "TIME", "SOURCE", "RUNS", "PAYLOAD", "NOTES"], rows))
    if next_cursor:
        stdout.print(f"more: --cursor {next_cursor}", style="dim")
