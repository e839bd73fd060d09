"""Shared pieces of the command line: options, opening the app, output and error reporting.

Exit codes (stable, for scripts):

=====  =============================================================
0      success (``--wait``/``follow``: the run completed)
1      the run failed (``--wait``/``follow``), or an unexpected error
2      usage error, feature not available, run canceled or stalled
3      configuration error (unknown key, malformed URL)
4      definition error (names the file, flow and step)
5      the backend is unreachable
6      unknown flow, run, function, job or trigger
7      invalid input (or an invalid trigger definition)
8      conflict (e.g. cancel of a run that already ended, fire of a paused trigger)
124    ``--timeout`` expired while waiting for a run
=====  =============================================================
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from flowtide._util.jsonutil import dumps_str
from flowtide.app import App
from flowtide.backends import BackendUnavailable
from flowtide.config import Config, ConfigError, load_config
from flowtide.engine.orchestrator import Conflict, Gone
from flowtide.engine.runs import InvalidInput, NotFound
from flowtide.engine.triggers import Conflict as TriggerConflict
from flowtide.engine.triggers import Paused, TriggerError
from flowtide.registry import DefinitionError, Registry

__all__ = [
    "EXIT_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "AppOpt",
    "BackendOpt",
    "CliError",
    "ConfigOpt",
    "JsonOpt",
    "debug",
    "describe_error",
    "fail",
    "invocation",
    "load",
    "open_app",
    "print_error",
    "print_json",
    "run",
    "set_invocation",
    "stderr",
    "stdout",
]

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_DEFINITION = 4
EXIT_BACKEND = 5
EXIT_NOT_FOUND = 6
EXIT_INVALID = 7
EXIT_CONFLICT = 8
EXIT_TIMEOUT = 124

# Not a terminal: no width limit, so ids and values are never cut to fit 80 columns.
_WIDTH: dict[str, Any] = (
    {"width": 100_000} if not sys.stdout.isatty() and "COLUMNS" not in os.environ else {}
)
# emoji=False: ids such as "<run>:ship:before" must not turn into pictures.
stdout = Console(highlight=False, markup=False, emoji=False, soft_wrap=True, **_WIDTH)
stderr = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="PATH", help="Config file (default: ./flowtide.toml)."),
]
AppOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--app", metavar="PATH", help="App directory, .py file or import path (repeatable)."
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", metavar="URL", help="Backend URL (overrides the config)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", metavar="N", min=1, max=1000, help="At most N items.")
]
CursorOpt = Annotated[
    str | None, typer.Option("--cursor", metavar="CURSOR", help="Continue a listing.")
]


class CliError(Exception):
    """A problem to report as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _invalid_input(exc: InvalidInput) -> str:
    fields = [
        f"{'.'.join(str(p) for p in e.get('loc', [])) or 'input'}: {e.get('msg', '')}"
        for e in exc.errors
    ]
    return f"{exc}: {'; '.join(fields)}" if fields else str(exc)


def describe_error(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error the user can act on, else None."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, ConfigError):
        return f"config error: {exc}", EXIT_CONFIG
    if isinstance(exc, DefinitionError):
        return f"definition error: {exc}", EXIT_DEFINITION
    if isinstance(exc, BackendUnavailable):
        return f"backend unavailable: {exc}", EXIT_BACKEND
    if isinstance(exc, NotFound):
        return str(exc), EXIT_NOT_FOUND
    if isinstance(exc, InvalidInput):
        return _invalid_input(exc), EXIT_INVALID
    if isinstance(exc, Conflict | TriggerConflict | Gone):
        return f"conflict: {exc}", EXIT_CONFLICT
    if isinstance(exc, Paused):
        return str(exc), EXIT_CONFLICT
    if isinstance(exc, TriggerError):
        return f"invalid trigger: {exc}", EXIT_INVALID
    return None


def one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, code)


def print_error(message: str) -> None:
    sys.stderr.write(f"flowtide: {one_line(message)}\n")
    sys.stderr.flush()


def print_json(value: Any) -> None:
    sys.stdout.write(dumps_str(value) + "\n")
    sys.stdout.flush()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _app_paths(paths: list[str]) -> list[str]:
    """``--app`` paths are relative to the working directory; import paths pass through."""
    out = []
    for entry in paths:
        for part in (p.strip() for p in entry.split(",")):
            if part:
                out.append(str(Path(part).resolve()) if Path(part).exists() else part)
    return out


def load(config: Path | None, app: list[str] | None = None, backend: str | None = None) -> Config:
    overrides: dict[str, Any] = {}
    if app:
        overrides["app"] = _app_paths(app)
    if backend is not None:
        overrides["backend"] = backend
    return load_config(config, overrides=overrides or None)


@asynccontextmanager
async def open_app(config: Config, *, definitions: bool = True) -> AsyncIterator[App]:
    """An open :class:`App`; ``definitions=False`` skips importing the app's code (commands
    that only read or control stored runs and jobs work even when the code is broken)."""
    app = App(config, registry=None if definitions else Registry())
    await app.open()
    try:
        yield app
    finally:
        await app.close()


_invocation: list[str] = []


def set_invocation(args: list[str]) -> None:
    _invocation[:] = args


def invocation() -> list[str]:
    """The arguments this process was started with (after the program name)."""
    return list(_invocation)


def debug() -> bool:
    return os.environ.get("FLOWTIDE_DEBUG", "") not in ("", "0", "false")
