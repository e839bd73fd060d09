"""``flowtide dev --reload``: run ``flowtide dev`` in a child process, restart it on changes."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

from flowtide.cli._common import EXIT_USAGE, fail, invocation
from flowtide.config import Config

__all__ = ["run_with_reload"]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _watched(config: Config) -> list[Path]:
    paths = [config.root]
    for entry in config.app:
        path = Path(entry) if Path(entry).is_absolute() else config.root / entry
        if path.exists() and not path.resolve().is_relative_to(config.root.resolve()):
            paths.append(path)
    return paths


def run_with_reload(config: Config, *, host: str | None, port: int | None) -> None:
    """Watch the app's ``.py`` and ``.toml`` files; restart the dev process when one changes.

    With ``--port 0`` a free port is chosen once, so the URL stays the same across restarts.
    """
    try:
        import watchfiles
    except ImportError:
        fail("--reload needs the watchfiles package: pip install watchfiles", EXIT_USAGE)
    args = [arg for arg in invocation() if arg != "--reload"]
    if port == 0:
        args += ["--port", str(_free_port(host or config.server.host))]
    command = shlex.join([sys.executable, "-m", "flowtide.cli", *args])

    def restarting(changes: set[tuple[watchfiles.Change, str]]) -> None:
        names = sorted({Path(path).name for _, path in changes})
        sys.stderr.write(f"flowtide dev: {', '.join(names)} changed; restarting\n")
        sys.stderr.flush()

    watchfiles.run_process(
        *_watched(config),
        target=command,
        target_type="command",
        callback=restarting,
        watch_filter=watchfiles.PythonFilter(extra_extensions=(".toml",)),
    )
