"""Long-running processes: ``flowtide dev``, ``flowtide serve`` and ``flowtide worker``.

SIGTERM or SIGINT stops a process gracefully (in-flight jobs finish within the worker's grace
period) and it exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from types import FrameType
from typing import Annotated, Any

import typer

from flowtide.app import App
from flowtide.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    AppOpt,
    BackendOpt,
    ConfigOpt,
    fail,
    load,
    run,
)
from flowtide.cli._reload import run_with_reload
from flowtide.config import Config

__all__ = ["register"]

LEVELS = ("debug", "info", "warning", "error")

LogLevelOpt = Annotated[
    str, typer.Option("--log-level", metavar="LEVEL", help=f"Logging level: {', '.join(LEVELS)}.")
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", metavar="HOST", help="Interface to bind (default: server.host)."),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        metavar="N",
        min=0,
        max=65535,
        help="Port (default: server.port; 0 picks a free one).",
    ),
]


def setup_logging(level: str) -> None:
    """The ``flowtide`` logger to stderr at ``level``; users' own handlers still work."""
    if level.lower() not in LEVELS:
        fail(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}", EXIT_USAGE)
    logger = logging.getLogger("flowtide")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _host(
    config: Config,
    *,
    name: str,
    serve_api: bool,
    run_worker: bool,
    host: str | None = None,
    port: int | None = None,
    queues: list[str] | None = None,
    concurrency: int | None = None,
) -> None:
    from flowtide.server.host import run_host

    def ready(url: str) -> None:
        if serve_api:
            _announce(f"flowtide {name}: {url}  (dashboard /, API /api/docs)")
        if run_worker:
            qs = ",".join(queues or config.worker.queues)
            n = concurrency or config.worker.concurrency
            what = "ready" if name == "worker" else "worker ready"
            _announce(f"flowtide {name}: {what} (queues {qs}, concurrency {n})")

    async with App(config) as app:
        await run_host(
            app,
            serve_api=serve_api,
            run_worker=run_worker,
            host=host,
            port=port,
            queues=queues,
            concurrency=concurrency,
            on_ready=ready,
        )


def check_port(config: Config, host: str | None, port: int | None) -> None:
    """Fail with one clear line if the HTTP port is taken (uvicorn would exit noisily)."""
    address = host or config.server.host
    number = config.server.port if port is None else port
    if number == 0:
        return
    try:
        infos = socket.getaddrinfo(address, number, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot listen on {address}:{number}: {exc}", EXIT_FAILED)
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            fail(f"cannot listen on {address}:{number}: {exc.strerror}", EXIT_FAILED)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_until_stopped(host: Coroutine[Any, Any, None]) -> None:
    """Run until stopped. A stop request that arrives while the app is still starting (before
    the host installs its own handlers) is honoured too: the process then exits 0 at once."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(host)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(cli: typer.Typer) -> None:
    @cli.command()
    def dev(
        app: AppOpt = None,
        host: HostOpt = None,
        port: PortOpt = None,
        reload: Annotated[
            bool, typer.Option("--reload", help="Restart when .py or .toml files change.")
        ] = False,
        config: ConfigOpt = None,
        backend: BackendOpt = None,
        log_level: LogLevelOpt = "info",
    ) -> None:
        """Run everything in one process: API, dashboard, webhooks, worker and scheduler."""
        cfg = load(config, app, backend)
        if reload:
            run_with_reload(cfg, host=host, port=port)
            return
        setup_logging(log_level)
        check_port(cfg, host, port)
        _run_until_stopped(
            _host(cfg, name="dev", serve_api=True, run_worker=True, host=host, port=port)
        )

    @cli.command()
    def serve(
        host: HostOpt = None,
        port: PortOpt = None,
        config: ConfigOpt = None,
        app: AppOpt = None,
        backend: BackendOpt = None,
        log_level: LogLevelOpt = "info",
    ) -> None:
        """Run the API, dashboard, webhooks and scheduler (no worker)."""
        cfg = load(config, app, backend)
        setup_logging(log_level)
        check_port(cfg, host, port)
        _run_until_stopped(
            _host(cfg, name="serve", serve_api=True, run_worker=False, host=host, port=port)
        )

    @cli.command()
    def worker(
        queues: Annotated[
            str | None,
            typer.Option(
                "--queues", "-q", metavar="A,B", help="Queues to work (default: worker.queues)."
            ),
        ] = None,
        concurrency: Annotated[
            int | None,
            typer.Option("--concurrency", "-c", metavar="N", min=1, help="Jobs at once."),
        ] = None,
        config: ConfigOpt = None,
        app: AppOpt = None,
        backend: BackendOpt = None,
        log_level: LogLevelOpt = "info",
    ) -> None:
        """Run a worker (and the timer scheduler) against the configured backend."""
        cfg = load(config, app, backend)
        setup_logging(log_level)
        names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
        _run_until_stopped(
            _host(
                cfg,
                name="worker",
                serve_api=False,
                run_worker=True,
                queues=names,
                concurrency=concurrency,
            )
        )
