"""The ``flowtide`` command line (DESIGN A6).

It talks to the backend directly through :class:`flowtide.App` (no HTTP). Problems the user can
act on (configuration, definitions, an unreachable backend, unknown names, invalid input,
conflicts) are reported as one line on stderr with a distinct exit code (see ``_common``);
``FLOWTIDE_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import typer
import typer.main

from flowtide import __version__
from flowtide.cli import db, host, migrate, start
from flowtide.cli._common import EXIT_FAILED, debug, describe_error, print_error, set_invocation
from flowtide.cli.flows import flows
from flowtide.cli.queues import jobs, queues
from flowtide.cli.runs import runs
from flowtide.cli.triggers import triggers

__all__ = ["cli", "main"]

cli = typer.Typer(
    name="flowtide",
    help="flowtide: event-driven workflow orchestration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"flowtide {__version__}\n")
        raise typer.Exit()


@cli.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """flowtide: event-driven workflow orchestration."""


host.register(cli)
start.register(cli)
cli.add_typer(runs, name="runs")
cli.add_typer(flows, name="flows")
cli.add_typer(queues, name="queues")
cli.add_typer(jobs, name="jobs")
cli.add_typer(triggers, name="triggers")
migrate.register(cli)
db.register(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exits the process with the command's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    set_invocation(args)
    command = typer.main.get_command(cli)
    try:
        command.main(args=args, prog_name="flowtide", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        known = describe_error(exc)
        if known is not None:
            print_error(known[0])
            sys.exit(known[1])
        if debug():
            traceback.print_exc()
        print_error(f"unexpected error: {type(exc).__name__}: {exc}")
        sys.exit(EXIT_FAILED)
