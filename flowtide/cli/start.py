"""``flowtide start FLOW [--input JSON|@file] [--wait] [--json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from flowtide.cli._common import (
    EXIT_USAGE,
    AppOpt,
    BackendOpt,
    ConfigOpt,
    JsonOpt,
    fail,
    load,
    open_app,
    print_json,
    run,
    stderr,
    stdout,
)
from flowtide.cli._follow import EXIT_BY_STATUS, watch
from flowtide.cli._render import error_text, short, styled
from flowtide.events import Event

__all__ = ["parse_input", "register"]

LIFECYCLE = ("flow.", "step.")


def parse_input(raw: str | None) -> Any:
    """``--input``: inline JSON, ``@path`` to read a JSON file, ``@-`` to read stdin."""
    if raw is None:
        return None
    source = "--input"
    text = raw
    if raw.startswith("@"):
        name = raw[1:]
        source = "stdin" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            fail(f"cannot read input file {name}: {exc.strerror}", EXIT_USAGE)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{source} is not valid JSON: {exc}", EXIT_USAGE)


def _show(event: Event) -> bool:
    return str(event["type"]).startswith(LIFECYCLE)


async def _start(
    flow: str,
    payload: Any,
    *,
    wait: bool,
    as_json: bool,
    timeout: float | None,
    config: Path | None,
    app_paths: list[str] | None,
    backend: str | None,
) -> int:
    cfg = load(config, app_paths, backend)
    async with open_app(cfg) as app:
        run_id = await app.start(flow, payload)
        if not wait:
            if as_json:
                print_json({"run_id": run_id, "flow": flow})
            else:
                stdout.print(run_id)
            return 0
        if not as_json:
            stdout.print(run_id)
        tty = stderr.is_terminal
        status = await watch(
            app,
            run_id,
            out=None if as_json and not tty else (stderr if as_json else stdout),
            show=_show,
            timeout=timeout,
            spinner=stderr if tty else None,
        )
        view = await app.service.view(run_id)
        if as_json:
            print_json(view)
        else:
            if status == "completed":
                result = view.get("result")
                detail = short(result, 200) if result is not None else ""
            else:
                detail = error_text(view.get("error"))
            text = Text.assemble("run ", run_id, " ", styled(status), f"  {detail}".rstrip())
            (stdout if status == "completed" else stderr).print(text)
        return EXIT_BY_STATUS.get(status, 2)


def register(cli: typer.Typer) -> None:
    @cli.command(no_args_is_help=True)
    def start(
        flow: Annotated[str, typer.Argument(metavar="FLOW", help="The flow to start.")],
        input: Annotated[
            str | None,
            typer.Option(
                "--input",
                "-i",
                metavar="JSON|@FILE",
                help="Run input: inline JSON, @file.json, or @- for stdin.",
            ),
        ] = None,
        wait: Annotated[
            bool,
            typer.Option(
                "--wait",
                "-w",
                help="Follow the run; exit 0 completed, 1 failed, 2 canceled or stalled.",
            ),
        ] = False,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                metavar="SECONDS",
                help="With --wait: give up after SECONDS (exit 124).",
            ),
        ] = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        app: AppOpt = None,
        backend: BackendOpt = None,
    ) -> None:
        """Start a run of FLOW and print its id."""
        payload = parse_input(input)
        code = run(
            _start(
                flow,
                payload,
                wait=wait,
                as_json=as_json,
                timeout=timeout,
                config=config,
                app_paths=app,
                backend=backend,
            )
        )
        raise typer.Exit(code)
