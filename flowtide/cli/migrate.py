"""``flowtide migrate --from URL --to URL [--verify] [--dry-run] [--json]``: copy runs (with
their histories and state), jobs, triggers, schedules, awaits and timers between backends.

No app is needed: both backends are opened from their URLs. The copy is idempotent and
resumable (see :mod:`flowtide.engine.migrate`); ``--verify`` compares both sides afterwards
and exits 1 on a difference; ``--dry-run`` reports what would be copied and writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from flowtide.backends import Backend, BackendUnavailable, create_backend
from flowtide.cli._common import (
    EXIT_BACKEND,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_USAGE,
    JsonOpt,
    fail,
    print_json,
    run,
    stderr,
    stdout,
)
from flowtide.engine.migrate import (
    KINDS,
    MigrationReport,
    VerifyReport,
    migrate,
    safe_url,
    verify,
)

__all__ = ["register"]

FromOpt = Annotated[
    str, typer.Option("--from", metavar="URL", help="The backend to copy from.", show_default=False)
]
ToOpt = Annotated[
    str, typer.Option("--to", metavar="URL", help="The backend to copy to.", show_default=False)
]
VerifyOpt = Annotated[
    bool,
    typer.Option(
        "--verify", help="Compare counts and per-run checksums afterwards; exit 1 on a difference."
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Report what would be copied; write nothing.")
]


def register(cli: typer.Typer) -> None:
    @cli.command("migrate")
    def migrate_command(
        source: FromOpt,
        target: ToOpt,
        check: VerifyOpt = False,
        dry_run: DryRunOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Copy everything between backends (sqlite://, redis://, postgresql://)."""
        source_backend = _backend("--from", source)
        target_backend = _backend("--to", target)
        if _identity(source) == _identity(target):
            fail(f"--from and --to name the same backend ({safe_url(source)})", EXIT_USAGE)
        migrated, verified = run(
            _run(source_backend, target_backend, source, dry_run, check, as_json)
        )
        doc: dict[str, Any] = {
            "from": safe_url(source),
            "to": safe_url(target),
            "migration": migrated.to_json(),
            "verify": verified.to_json() if verified is not None else None,
        }
        if as_json:
            print_json(doc)
        else:
            _print_migration(source, target, migrated)
            if verified is not None:
                _print_verify(verified)
        if verified is not None and not verified.ok:
            wrong = [c for c in verified.counts if c[1] != c[2]]
            fail(
                f"verification failed: {len(wrong)} count(s) and {len(verified.differences)} "
                "run(s) differ",
                EXIT_FAILED,
            )


def _backend(flag: str, url: str) -> Backend:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        fail(f"{flag} {url}: memory:// keeps nothing after the command ends", EXIT_USAGE)
    try:
        backend = create_backend(url)
    except BackendUnavailable as exc:
        fail(f"{flag}: {exc}", EXIT_CONFIG)
    if flag == "--from" and scheme == "sqlite":
        path = _sqlite_path(url)
        if path not in ("", ":memory:") and not Path(path).is_file():
            fail(f"{flag} {url}: no such database file ({Path(path).resolve()})", EXIT_BACKEND)
    return backend


def _sqlite_path(url: str) -> str:
    """The file of a sqlite:// URL as the backend reads it (relative or absolute)."""
    rest = url.split("://", 1)[1].split("?", 1)[0]
    return rest[1:] if rest.startswith("/") else rest


def _identity(url: str) -> tuple[Any, ...]:
    """What tells two URLs of one store apart (not their spelling)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or "127.0.0.1"
    host = "127.0.0.1" if host == "localhost" else host
    if parts.scheme == "sqlite":
        return ("sqlite", str(Path(_sqlite_path(url)).resolve()))
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/") or "0"
        return ("redis", host, parts.port or 6379, db, query.get("prefix", "flowtide:"))
    if parts.scheme in ("postgresql", "postgres"):
        db = parts.path.strip("/")
        return ("postgresql", host, parts.port or 5432, db, query.get("schema", "flowtide"))
    return (url,)


async def _open(backend: Backend, flag: str) -> None:
    try:
        await backend.open()
    except BackendUnavailable as exc:
        fail(f"backend unavailable ({flag}): {exc}", EXIT_BACKEND)


class _Bars:
    """The engine's progress callbacks on a rich progress display (one bar per phase)."""

    def __init__(self, progress: RichProgress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def begin(self, phase: str, total: int) -> None:
        if phase in self.tasks:
            self.progress.update(self.tasks[phase], total=total)
        else:
            self.tasks[phase] = self.progress.add_task(phase, total=total)

    def advance(self, phase: str, amount: int = 1) -> None:
        task = self.tasks.get(phase)
        if task is not None:
            self.progress.advance(task, amount)


@contextlib.contextmanager
def _bars(quiet: bool) -> Iterator[_Bars]:
    progress = RichProgress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=quiet or not stderr.is_terminal,
        transient=False,
    )
    with progress:
        yield _Bars(progress)


async def _run(
    source: Backend,
    target: Backend,
    source_url: str,
    dry_run: bool,
    check: bool,
    as_json: bool,
) -> tuple[MigrationReport, VerifyReport | None]:
    await _open(source, "--from")
    try:
        await _open(target, "--to")
        try:
            with _bars(as_json) as bars:
                report = await migrate(
                    source, target, source_url=source_url, dry_run=dry_run, progress=bars
                )
                verified = await verify(source, target, progress=bars) if check else None
            return report, verified
        finally:
            await target.close()
    finally:
        await source.close()


def _print_migration(source: str, target: str, report: MigrationReport) -> None:
    what = "would copy" if report.dry_run else "copied"
    table = Table(box=None, pad_edge=False)
    table.add_column("kind")
    table.add_column(what, justify="right")
    table.add_column("already there", justify="right")
    for kind in KINDS:
        table.add_row(kind, str(report.copied[kind]), str(report.present[kind]))
    stdout.print(
        f"{safe_url(source)} -> {safe_url(target)}" + (" (dry run)" if report.dry_run else "")
    )
    if report.resumed:
        stdout.print("continued from the checkpoint of an earlier migration from this source")
    stdout.print(table)


def _print_verify(report: VerifyReport) -> None:
    table = Table(box=None, pad_edge=False)
    table.add_column("kind")
    table.add_column("source", justify="right")
    table.add_column("target", justify="right")
    table.add_column("")
    for kind, mine, theirs in report.counts:
        table.add_row(kind, str(mine), str(theirs), "ok" if mine == theirs else "DIFFERS")
    stdout.print(table)
    for diff in report.differences[:100]:
        stdout.print(f"run {diff['run_id']}: {diff['problem']}")
    if len(report.differences) > 100:
        stdout.print(f"... and {len(report.differences) - 100} more runs")
    if report.ok:
        stdout.print(f"verified: counts match, {report.runs_checked} runs identical")
