"""SQLite connections: one on a database thread, one inline on the event loop, one watcher.

Writes serialize on SQLite's lock (busy timeout). Short operations run inline on the event
loop's own connection when SQLite answers at once (no thread hop), else on the database thread,
which waits for the lock. Waiters in other processes notice commits by polling
``PRAGMA data_version``, which is cheap (it reads shared memory, not the database).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from flowtide.backends._common import Notifier
from flowtide.backends._sql import load_migrations
from flowtide.backends.base import BackendUnavailable

__all__ = ["SQLiteConnections"]

T = TypeVar("T")
OPEN_RETRY_SECONDS = 30.0


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class SQLiteConnections:
    """Opening, migrating and running work on the database; the backend's operations build on
    :meth:`_read`, :meth:`_short_write` and :meth:`_run`."""

    def __init__(self, url: str) -> None:
        self.url = url
        # sqlite:///relative/file.db and sqlite:////absolute/file.db
        rest = url.split("://", 1)[1].split("?", 1)[0]
        self.path = rest[1:] if rest.startswith("/") else rest
        self._db: sqlite3.Connection | None = None
        self._fast: sqlite3.Connection | None = None
        self._watch: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, "flowtide-sqlite")
        self._watch_thread = ThreadPoolExecutor(1, "flowtide-sqlite-watch")
        self._closed = False
        self._notifier = Notifier()
        self._watcher: asyncio.Task[None] | None = None
        self._waiting = 0
        self._has_waiters = asyncio.Event()

    # -- connection -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.path not in ("", ":memory:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA foreign_keys = OFF")
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS flowtide_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT)"
            )
            applied = {v for (v,) in db.execute("SELECT version FROM flowtide_migrations")}
            for version, name, sql in load_migrations("flowtide.backends.sqlite"):
                if version in applied:
                    continue
                for statement in sql.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO flowtide_migrations VALUES (?, ?)", (version, name))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn, *args)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"sqlite {self.path}: {exc}") from exc

    async def open(self) -> None:
        if self._closed:  # reopening after close: the old threads are gone
            self._thread = ThreadPoolExecutor(1, "flowtide-sqlite")
            self._watch_thread = ThreadPoolExecutor(1, "flowtide-sqlite-watch")
            self._closed = False

        def connect() -> None:
            # Several processes opening a new file at once can collide while one of them
            # switches it to WAL; SQLite then answers "locked" at once, without waiting.
            delay, deadline = 0.02, time.monotonic() + OPEN_RETRY_SECONDS
            while True:
                try:
                    self._db = self._connect()
                    self._migrate(self._db)
                    return
                except sqlite3.OperationalError as exc:
                    if self._db is not None:
                        self._db.close()
                        self._db = None
                    if not _busy(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)

        try:
            await self._run(connect)
        except (BackendUnavailable, sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"cannot open SQLite database {self.url}: {exc}") from None
        loop = asyncio.get_running_loop()
        self._fast = self._connect()  # busy_timeout applies while it switches the file to WAL
        self._fast.execute("PRAGMA busy_timeout = 0")
        self._watch = await loop.run_in_executor(self._watch_thread, self._connect)
        self._watcher = asyncio.create_task(self._watch_loop(), name="flowtide-sqlite-watch")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        if self._watch is not None:
            # on its own thread: a data_version read the canceled watcher started may still
            # be running there, and closing a connection in use crashes the interpreter
            await asyncio.get_running_loop().run_in_executor(self._watch_thread, self._watch.close)
            self._watch = None
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self._thread.shutdown(wait=True)
        self._watch_thread.shutdown(wait=True)
        self._closed = True

    async def ping(self) -> None:
        await self._run(lambda: self.db.execute("SELECT 1").fetchone())

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise BackendUnavailable("the SQLite backend is not open")
        return self._db

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A short read: on the event loop's own connection (no thread hop) when SQLite
        answers at once, else on the database thread."""
        fast = self._fast
        if fast is not None:
            try:
                return fn(fast)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise BackendUnavailable(f"sqlite {self.path}: {exc}") from exc
        return await self._run(lambda: fn(self.db))

    async def _short_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A short write transaction, inline like :meth:`_read` when the write lock is free
        right now (the fast connection never waits for it), else on the database thread."""
        fast = self._fast
        if fast is not None:
            try:
                fast.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(fast)
                    fast.execute("COMMIT")
                    return result
                except BaseException:
                    if fast.in_transaction:
                        fast.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise BackendUnavailable(f"sqlite {self.path}: {exc}") from exc
        return await self._run(self._write, fn)

    # -- wake-ups -------------------------------------------------------------------------------
    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._watch is not None
        watch = self._watch

        def version() -> int:
            return int(watch.execute("PRAGMA data_version").fetchone()[0])

        last = await loop.run_in_executor(self._watch_thread, version)
        while True:
            await self._has_waiters.wait()
            current = await loop.run_in_executor(self._watch_thread, version)
            if current != last:
                last = current
                self._notifier.notify()
            await asyncio.sleep(0.01)

    async def wait_for_change(self, timeout: float) -> None:
        self._waiting += 1
        self._has_waiters.set()
        try:
            await self._notifier.wait(timeout)
        finally:
            self._waiting -= 1
            if self._waiting == 0:
                self._has_waiters.clear()
