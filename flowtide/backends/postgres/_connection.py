"""PostgreSQL connections: two pools, transactions with retries, and LISTEN wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import asyncpg

from flowtide.backends._common import Notifier
from flowtide.backends.base import BackendUnavailable
from flowtide.backends.postgres import migrate, retention
from flowtide.backends.postgres._pg import (
    Listener,
    Settings,
    is_connection_error,
    is_retryable,
    parse_url,
    unavailable,
)

__all__ = ["PostgresConnections"]

T = TypeVar("T")
_RETRIES = 8  # deadlocks and serialization failures: the transaction runs again


async def _keep_session(con: asyncpg.Connection) -> None:
    """A released connection goes back to the pool as it is: asyncpg's default reset is one more
    round trip per use (advisory unlocks, CLOSE ALL, UNLISTEN *, RESET ALL), and pooled
    connections keep no session state (no LISTEN, SET, cursor; the retention sweep's advisory
    lock is given back by the sweep, or goes with the connection). An open transaction is still
    rolled back by the pool."""


class PostgresConnections:
    def __init__(self, url: str) -> None:
        self.url = url
        self.settings: Settings = parse_url(url)
        self.schema = self.settings.schema
        self._pool: asyncpg.Pool | None = None
        self._planned: asyncpg.Pool | None = None  # claims and batch commits: see open
        self._notifier = Notifier()
        self._unseen = False  # a change arrived that no later wait_for_change returned for
        # The latest claim came back short: there were no more due jobs for it. A commit then
        # claims with its outcomes only if it enqueued jobs (see commit_and_claim).
        self._drained = False
        self._listener: Listener | None = None
        self._retention: asyncio.Task[None] | None = None

    # -- connection ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        s = self.settings
        try:
            con = await asyncpg.connect(s.dsn, timeout=10)
            try:
                await migrate.upgrade(con, s.schema)
            finally:
                await con.close()
            self._pool = await asyncpg.create_pool(
                s.dsn,
                min_size=1,
                max_size=s.pool_size,
                server_settings=s.server_settings,
                timeout=10,
                reset=_keep_session,
            )
            # Claims and the commits of a worker's batches plan every statement for its
            # parameters. PostgreSQL switches a prepared statement to a plan made for any
            # parameters after five runs, made for the table sizes of that moment, and a queue
            # goes from empty to a long backlog: a claim planned on a small table read and
            # sorted every due job (12 ms for 100 of 20,000 jobs instead of 2 ms), a commit
            # scanned the whole table (56 ms for 100 jobs of 30,000 instead of 2 ms). Planning
            # a claim costs about 0.5 ms; a claim while the queues are drained (the latest one
            # came back short) uses the cached plan (it is cheap whatever the plan, and it is
            # on the path of a job's latency). A worker claims and commits on two at most.
            self._planned = await asyncpg.create_pool(
                s.dsn,
                min_size=0,
                max_size=min(2, s.pool_size),
                server_settings=s.planned_settings,
                timeout=10,
                reset=_keep_session,
            )
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            raise unavailable(s, exc) from None
        self._listener = Listener(s, self._notify_local)
        self._listener.start()
        # always: a sweep also deletes expired records, whatever the policy keeps
        self._retention = asyncio.create_task(
            retention.run_forever(self._pool, s.schema, s.retention), name="flowtide-pg-retention"
        )

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            await asyncio.gather(self._retention, return_exceptions=True)
            self._retention = None
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        pools = [p for p in (self._pool, self._planned) if p is not None]
        self._pool = self._planned = None
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), 5.0)
            except (OSError, TimeoutError, asyncpg.InterfaceError):
                pool.terminate()

    @contextlib.asynccontextmanager
    async def _conn(self, planned: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (of the planned pool: see ``open``); connection problems become
        BackendUnavailable (and the pool drops its other connections, which a server restart
        broke as well)."""
        pool = self._planned if planned else self._pool
        if pool is None:
            raise BackendUnavailable("the PostgreSQL backend is not open")
        try:
            async with pool.acquire(timeout=self.settings.pool_timeout) as con:
                yield cast(asyncpg.Connection, con)  # the pool's proxy forwards every call
        except TimeoutError as exc:
            raise BackendUnavailable(
                f"postgresql {self.settings.safe_url()}: no free connection within "
                f"{self.settings.pool_timeout}s (pool_size={self.settings.pool_size})"
            ) from exc
        except Exception as exc:
            if is_connection_error(exc):
                with contextlib.suppress(Exception):
                    await pool.expire_connections()
                raise unavailable(self.settings, exc) from exc
            raise

    async def _tx(
        self, fn: Callable[[asyncpg.Connection], Awaitable[T]], planned: bool = False
    ) -> T:
        """Run ``fn`` in one transaction; again if it lost a deadlock or serialization race."""
        for attempt in range(_RETRIES):
            try:
                async with self._conn(planned) as con, con.transaction():
                    return await fn(con)
            except asyncpg.PostgresError as exc:
                if not is_retryable(exc) or attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.001 * 2**attempt)
        raise AssertionError("unreachable")

    async def _fetch(self, query: str, *args: Any, planned: bool = False) -> list[asyncpg.Record]:
        async with self._conn(planned) as con:
            rows: list[asyncpg.Record] = await con.fetch(query, *args)
            return rows

    async def _execute(self, query: str, *args: Any) -> str:
        async with self._conn() as con:
            status: str = await con.execute(query, *args)
            return status

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    def _notify_local(self) -> None:
        self._unseen = True
        self._notifier.notify()

    async def wait_for_change(self, timeout: float) -> None:
        """Level-triggered for the next caller: a change that arrived while nobody was waiting
        (a worker in the middle of a claim that started before the change committed) makes the
        next call return at once instead of sleeping a whole poll interval."""
        if self._unseen:
            self._unseen = False
            await asyncio.sleep(0)
            return
        listener = self._listener
        if listener is None or not listener.connected.is_set():
            timeout = min(timeout, self.settings.poll)  # the fallback poll
        await self._notifier.wait(timeout)
