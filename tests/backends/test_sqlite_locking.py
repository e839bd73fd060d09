"""SQLite specifics: short operations run inline when the write lock is free, and wait for it
on the database thread (never failing, never blocking the event loop) when it is not."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from flowtide.backends.base import Job
from flowtide.backends.sqlite import SQLiteBackend


async def test_writes_wait_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        write = asyncio.create_task(backend.enqueue([Job(id="j1", queue="q", name="fn")]))
        ticks = 0
        while ticks < 20:  # the event loop keeps running while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 10) == ["j1"]
        job = await backend.get_job("j1")
        assert job is not None and job.state == "waiting"
    finally:
        other.close()
        await backend.close()


async def test_reads_do_not_wait_for_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "reads.db"
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.open()
    await backend.enqueue([Job(id="j1", queue="q", name="fn")])
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        job = await asyncio.wait_for(backend.get_job("j1"), 2)
        assert job is not None
    finally:
        other.execute("ROLLBACK")
        other.close()
        await backend.close()
