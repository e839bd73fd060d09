"""``flowtide flows list|show``: the app's flows as the registry sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flowtide.app import load_registry
from flowtide.cli._common import (
    AppOpt,
    BackendOpt,
    ConfigOpt,
    JsonOpt,
    load,
    print_json,
    stdout,
)
from flowtide.cli._render import short, table
from flowtide.engine.runs import NotFound

__all__ = ["flows"]

flows = typer.Typer(help="List and inspect the app's flows.", no_args_is_help=True)


def _describe_all(
    config: Path | None, app: list[str] | None, backend: str | None
) -> list[dict[str, Any]]:
    """Every flow's description; only the definitions are loaded, no backend is opened."""
    registry = load_registry(load(config, app, backend))
    return [graph.describe() for graph in registry.flows.values()]


@flows.command("list")
def list_flows(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """List the flows the app defines."""
    items = _describe_all(config, app, backend)
    if as_json:
        print_json({"items": items, "next_cursor": None})
        return
    if not items:
        stdout.print("no flows")
        return
    rows = [
        [
            f["name"],
            f["entry"],
            str(len(f["steps"])),
            ", ".join(sorted({s["queue"] for s in f["steps"]})),
            ", ".join(t["name"] for t in f["triggers"]),
            short(f["description"], 50),
        ]
        for f in items
    ]
    stdout.print(table(["FLOW", "ENTRY", "STEPS", "QUEUES", "TRIGGERS", "DESCRIPTION"], rows))


def _print_flow(f: dict[str, Any]) -> None:
    stdout.print(f"flow         {f['name']}", style="bold")
    if f["description"]:
        stdout.print(f"description  {f['description']}")
    stdout.print(f"entry        {f['entry']}")
    stdout.print(f"stall after  {f['stall_timeout']:g}s")
    stdout.print()
    rows = [
        [
            s["name"],
            str(s["level"]),
            ", ".join(s["subscribes"]),
            ", ".join(s["emits"]),
            s["queue"],
            str(s["retries"]),
            "" if s["timeout"] is None else f"{s['timeout']:g}s",
            s["runtime"] + (" optional" if s["optional"] else ""),
        ]
        for s in f["steps"]
    ]
    columns = ["STEP", "LEVEL", "SUBSCRIBES", "EMITS", "QUEUE", "RETRIES", "TIMEOUT", "RUNTIME"]
    stdout.print(table(columns, rows))
    if f["edges"]:
        stdout.print()
        for edge in f["edges"]:
            stdout.print(f"  {edge['from']} --[{edge['token']}]--> {edge['to']}")
    for trigger in f["triggers"]:
        stdout.print(f"trigger      {trigger['name']} ({trigger['type']}, {trigger['mode']})")
    for item in f["awaits"]:
        stdout.print(f"await        {item['step']} {item['position']}: {item['type']}")


@flows.command("show", no_args_is_help=True)
def show_flow(
    flow: Annotated[str, typer.Argument(metavar="FLOW", help="The flow's name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    app: AppOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Show one flow: steps, edges, levels, triggers and awaits."""
    by_name = {f["name"]: f for f in _describe_all(config, app, backend)}
    if flow not in by_name:
        raise NotFound(f"unknown flow {flow!r}")
    if as_json:
        print_json(by_name[flow])
    else:
        _print_flow(by_name[flow])
