"""Commands of the contract that this version does not provide yet: ``migrate``."""

from __future__ import annotations

import typer

from flowtide.cli._common import EXIT_USAGE, fail

__all__ = ["register"]

_ANY_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(cli: typer.Typer) -> None:
    @cli.command(context_settings=_ANY_ARGS, add_help_option=False)
    def migrate(ctx: typer.Context) -> None:
        """Copy data between backends: --from URL --to URL (not yet available)."""
        fail("migrate is not yet available in this version", EXIT_USAGE)
