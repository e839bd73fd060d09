"""One flowtide process: any mix of the HTTP server, a worker and the timer scheduler.

``flowtide dev`` runs all three, ``serve`` the server and scheduler, ``worker`` the worker and
scheduler. SIGTERM or SIGINT stops claiming, lets in-flight jobs finish within the grace
period, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Collection, Iterator
from typing import Any

from flowtide.app import App
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.stats import report_stats
from flowtide.engine.worker import Worker

__all__ = ["run_host"]

logger = logging.getLogger("flowtide")


def _server_class() -> type[Any]:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: this process handles SIGTERM/SIGINT."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


async def run_host(
    app: App,
    *,
    serve_api: bool,
    run_worker: bool,
    run_scheduler: bool = True,
    host: str | None = None,
    port: int | None = None,
    queues: Collection[str] | None = None,
    concurrency: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT. ``app`` must be open. ``on_ready`` gets the base URL."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[Any]] = []
    worker = Worker(app.service, queues=queues, concurrency=concurrency) if run_worker else None
    scheduler = Scheduler(app.service, triggers=app.trigger_service) if run_scheduler else None
    server = None
    api = None
    stats: asyncio.Task[None] | None = None
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run(), name="worker"))
        stats = asyncio.create_task(
            report_stats(app.backend, worker, app.config.worker.stats_interval, worker.queues),
            name="flowtide-stats",
        )
    if scheduler is not None:
        tasks.append(asyncio.create_task(scheduler.run(), name="scheduler"))
    syncing = asyncio.create_task(app.trigger_service.run_sync(stop), name="trigger-sync")
    url = app.config.base_url
    if serve_api:
        import uvicorn

        from flowtide.server import create_app

        _QuietServer = _server_class()

        cfg = app.config.server
        api = create_app(app)
        config = uvicorn.Config(
            api,
            host=host or cfg.host,
            port=cfg.port if port is None else port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = _QuietServer(config)
        tasks.append(asyncio.create_task(server.serve(), name="server"))
        while not server.started:
            if tasks[-1].done():
                await tasks[-1]  # raises the bind error
                raise SystemExit(f"the HTTP server on {config.host}:{config.port} did not start")
            await asyncio.sleep(0.02)
        sockets = [s for srv in server.servers for s in srv.sockets]
        if sockets:
            bound = sockets[0].getsockname()
            url = f"http://{config.host}:{bound[1]}"
            if not cfg.base_url:  # webhook await URLs point at the port actually bound
                app.service.policy = dataclasses.replace(app.service.policy, base_url=url)
    if on_ready is not None:
        on_ready(url)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopper and task.exception() is not None:
            logger.error("%s stopped: %s", task.get_name(), task.exception())
    logger.info("shutting down")
    if stats is not None:
        stats.cancel()
    if worker is not None:
        worker.stop()
    if scheduler is not None:
        scheduler.stop()
    if server is not None:
        from flowtide.server import close_streams

        assert api is not None
        close_streams(api)  # open SSE streams would otherwise hold up the shutdown forever
        server.should_exit = True
    stopper.cancel()
    await asyncio.gather(*tasks, syncing, return_exceptions=True)
