"""huey application shared by the benchmark parent and the ``huey_consumer`` child.

The parent builds its own ``SqliteHuey`` with :func:`make_huey`. The consumer child is
started as ``huey_consumer bench.peers._huey_app.huey`` with the database path in the
``FLOWTIDE_BENCH_HUEY_DB`` environment variable, so both register the same task names.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import SqliteHuey  # type: ignore[import-untyped]

DB_ENV = "FLOWTIDE_BENCH_HUEY_DB"
READY_ENV = "FLOWTIDE_BENCH_HUEY_READY"
QUEUE_NAME = "flowtide-bench"


# Task bodies: no-ops passing a small dict along. A non-None return value makes huey
# store a result row, which is how the parent observes completion.


def noop(i: int) -> int:
    return i


def step1(run: int) -> dict[str, int]:
    return {"run": run, "seq": 1}


def step2(run: int, seq: int) -> dict[str, int]:
    return {"run": run, "seq": seq + 1}


def step3(run: int, seq: int) -> dict[str, int]:
    return {"run": run, "seq": seq + 1}


def lat1(run: int) -> dict[str, float]:
    return {"run": run, "t1_end": time.perf_counter()}


def lat2(run: int, t1_end: float) -> dict[str, float]:
    t2_start = time.perf_counter()
    return {"run": run, "t1_end": t1_end, "t2_start": t2_start}


@dataclass(frozen=True)
class Tasks:
    noop: Any
    step1: Any
    step2: Any
    step3: Any
    lat1: Any
    lat2: Any


def make_huey(db_path: str, ready_path: str | None = None) -> tuple[SqliteHuey, Tasks]:
    """A SqliteHuey on ``db_path`` with the benchmark tasks registered (default options)."""
    huey = SqliteHuey(QUEUE_NAME, filename=db_path)
    task = huey.task()
    tasks = Tasks(
        noop=task(noop),
        step1=task(step1),
        step2=task(step2),
        step3=task(step3),
        lat1=task(lat1),
        lat2=task(lat2),
    )
    if ready_path is not None:
        ready = Path(ready_path)

        @huey.on_startup()  # type: ignore[untyped-decorator]
        def _announce_ready() -> None:
            # Runs in the worker thread just before it starts dequeuing.
            tmp = ready.with_suffix(".tmp")
            tmp.write_text(repr(time.time()))
            os.replace(tmp, ready)

    return huey, tasks


huey: SqliteHuey | None = None
tasks: Tasks | None = None
if DB_ENV in os.environ:
    huey, tasks = make_huey(os.environ[DB_ENV], os.environ.get(READY_ENV))
