"""Worker processes of the PostgreSQL peers:
``python -m bench.postgres._peer_workers {pgqueuer|procrastinate} DSN SCHEMA READY CONCURRENCY``.

Each registers the same no-op work as flowtide's bench app: ``noop`` and the chain
``step1 -> step2 -> step3`` (each step enqueues the next), writes its ready time to READY and
runs its library's own worker loop until it is stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path


def _announce(ready: str) -> None:
    tmp = Path(ready + ".tmp")
    tmp.write_text(repr(time.time()))
    tmp.replace(ready)


async def pgqueuer_worker(dsn: str, schema: str, ready: str, concurrency: int) -> None:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

    con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    qm = QueueManager(Queries(AsyncpgDriver(con)))

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        return None

    @qm.entrypoint("step1")
    async def step1(job: Job) -> None:
        await qm.queries.enqueue("step2", job.payload)

    @qm.entrypoint("step2")
    async def step2(job: Job) -> None:
        await qm.queries.enqueue("step3", job.payload)

    @qm.entrypoint("step3")
    async def step3(job: Job) -> None:
        return None

    _announce(ready)
    await qm.run(batch_size=concurrency)


def procrastinate_app(dsn: str, schema: str) -> object:
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=dsn, kwargs={"options": f"-c search_path={schema}"}
        )
    )

    @app.task(name="noop")
    async def noop(i: int) -> None:
        return None

    @app.task(name="step1")
    async def step1(i: int) -> None:
        await step2.defer_async(i=i)

    @app.task(name="step2")
    async def step2(i: int) -> None:
        await step3.defer_async(i=i)

    @app.task(name="step3")
    async def step3(i: int) -> None:
        return None

    return app


async def procrastinate_worker(dsn: str, schema: str, ready: str, concurrency: int) -> None:
    import procrastinate

    app = procrastinate_app(dsn, schema)
    assert isinstance(app, procrastinate.App)
    async with app.open_async():
        _announce(ready)
        await app.run_worker_async(concurrency=concurrency, install_signal_handlers=False)


if __name__ == "__main__":
    kind, dsn, schema, ready, concurrency = sys.argv[1:6]
    worker = pgqueuer_worker if kind == "pgqueuer" else procrastinate_worker
    asyncio.run(worker(dsn, schema, ready, int(concurrency)))
