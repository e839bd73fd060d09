"""``flowtide db upgrade`` and ``flowtide db status``: the PostgreSQL backend's schema.

The backend applies its migrations by itself when it opens (under an advisory lock, so
processes starting together apply each once); ``db upgrade`` does it ahead of a deployment,
``db status`` shows the schema's version and what is pending.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import typer

from flowtide.cli._common import (
    EXIT_USAGE,
    BackendOpt,
    ConfigOpt,
    JsonOpt,
    fail,
    load,
    print_json,
    run,
    stdout,
)

__all__ = ["db", "register"]

db = typer.Typer(help="The PostgreSQL backend's schema: upgrade, status.", no_args_is_help=True)


def register(cli: typer.Typer) -> None:
    cli.add_typer(db, name="db")


def _postgres_url(config: ConfigOpt, backend: BackendOpt) -> str:
    url = load(config, None, backend).backend
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        fail(
            f"db commands manage a PostgreSQL backend; {url!r} needs no migrations "
            "(it creates its schema when it opens)",
            EXIT_USAGE,
        )
    return url


async def _with_connection(url: str, action: str) -> Any:
    try:
        import asyncpg

        from flowtide.backends.postgres import migrate
        from flowtide.backends.postgres._pg import parse_url, unavailable
    except ModuleNotFoundError:
        fail("install the postgres extra (pip install 'flowtide[postgres]')", EXIT_USAGE)
    settings = parse_url(url)
    try:
        con = await asyncpg.connect(settings.dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unavailable(settings, exc) from None
    try:
        if action == "upgrade":
            applied = await migrate.upgrade(con, settings.schema)
            return applied, await migrate.status(con, settings.schema)
        return [], await migrate.status(con, settings.schema)
    finally:
        await con.close()


def _report(url: str, action: str, as_json: bool) -> None:
    applied, status = run(_with_connection(url, action))
    doc = {
        "schema": status.schema,
        "version": status.version,
        "latest": status.latest,
        "applied_now": applied,
        "applied": [{"version": v, "name": n, "applied_at": at} for v, n, at in status.applied],
        "pending": [{"version": v, "name": n} for v, n in status.pending],
    }
    if as_json:
        print_json(doc)
        return
    if action == "upgrade":
        if applied:
            stdout.print(f"applied {', '.join(f'{v:04d}' for v in applied)}")
        else:
            stdout.print("already up to date")
    state = "up to date" if not status.pending else f"{len(status.pending)} pending"
    stdout.print(f"schema {status.schema}: version {status.version} of {status.latest} ({state})")
    for v, name, at in status.applied:
        stdout.print(f"  {v:04d} {name}  applied {at}")
    for v, name in status.pending:
        stdout.print(f"  {v:04d} {name}  pending")


@db.command("upgrade")
def upgrade(as_json: JsonOpt = False, config: ConfigOpt = None, backend: BackendOpt = None) -> None:
    """Apply pending migrations to the configured PostgreSQL schema."""
    _report(_postgres_url(config, backend), "upgrade", as_json)


@db.command("status")
def status(as_json: JsonOpt = False, config: ConfigOpt = None, backend: BackendOpt = None) -> None:
    """Show the schema's migration version and any pending migrations."""
    _report(_postgres_url(config, backend), "status", as_json)
