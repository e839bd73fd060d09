"""PostgreSQL backend (``postgresql://USER@HOST/DB?schema=flowtide``), on asyncpg.

- Tables live in one schema (default ``flowtide``), created and upgraded by versioned SQL
  migrations under an advisory lock when the backend opens (see ``migrate``).
- Claiming is one statement (``claim`` in queries.sql): due jobs picked with ``FOR UPDATE SKIP
  LOCKED`` in batches, so workers never wait for each other, leased, and their ``step.started``
  events appended, atomically.
- A commit is one transaction per batch (``_commit``): runs are locked with ``FOR UPDATE``,
  the pure decisions run inside, and the ``attempt_of`` guards are checked on locked job rows;
  a batch that only finishes standalone jobs is a single statement. ``commit_and_claim`` (the
  worker's group commit) also claims jobs for the slots the batch frees, in the same statement
  or transaction.
- Connections: two pools (see ``open``), and a connection goes back to its pool without a
  reset round trip (``_keep_session``).
- Wake-ups: every write that matters sends ``NOTIFY`` (ids only) on the schema's channel; one
  LISTEN connection per process wakes local waiters, with a fallback poll while it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar, cast

import asyncpg

from flowtide._util.clock import iso, now
from flowtide._util.jsonutil import dumps_str, loads
from flowtide.backends._common import (
    LEASE_LOST,
    Notifier,
    claimed_job,
    epoch,
    exact_event,
    unjson,
)
from flowtide.backends.base import (
    BackendUnavailable,
    CommitItem,
    Job,
    Page,
    RunImport,
    StateItems,
    Timer,
)
from flowtide.backends.postgres import migrate, retention
from flowtide.backends.postgres._commit import (
    Q,
    Row,
    commit_batch,
    commit_counted,
    commit_unlocked,
    finished_jobs,
    job_columns,
    json_or_none,
    record_from_row,
)
from flowtide.backends.postgres._pg import (
    Listener,
    Settings,
    is_connection_error,
    is_retryable,
    parse_url,
    unavailable,
)
from flowtide.events import Event, NewEvent, RunRecord

__all__ = ["PostgresBackend"]

T = TypeVar("T")
_JOB_COLUMNS = [
    *("id", "queue", "name", "run_id", "flow", "state", "attempt", "reclaims", "priority"),
    *("run_at", "created_at", "finished_at", "key", "worker", "lease_until", "input"),
    *("result", "error"),
]
_RETRIES = 8  # deadlocks and serialization failures: the transaction runs again


def _pieces(text: str) -> dict[str, str]:
    """The ``-- {name}`` sections of a query."""
    parts = re.split(r"^-- (\{\w+\})$", text, flags=re.MULTILINE)
    return {name: body.strip("\n") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _fill(template: str, pieces: Mapping[str, str]) -> str:
    for name in ("{done}", "{skip}", "{notify}"):
        template = template.replace(name, pieces.get(name, ""))
    return template


_PIECES = _pieces(Q["commit_claim"])
_CLAIM = _fill(Q["claim"], {})
_COMMIT_CLAIM = _fill(
    Q["claim"],
    {
        "{done}": _PIECES["{done}"] + "\n",
        "{skip}": _PIECES["{skip}"],
        "{notify}": "\n" + _PIECES["{notify}"],
    },
)
_RECORDS_LIST = {
    (after, reverse): Q["records_list"]
    .replace("{after}", "" if not after else "AND key < $4" if reverse else "AND key > $4")
    .replace("{order}", "DESC" if reverse else "ASC")
    for after in (False, True)
    for reverse in (False, True)
}


async def _keep_session(con: asyncpg.Connection) -> None:
    """A released connection goes back to the pool as it is: asyncpg's default reset is one more
    round trip per use (advisory unlocks, CLOSE ALL, UNLISTEN *, RESET ALL), and pooled
    connections keep no session state (no LISTEN, SET, cursor; the retention sweep's advisory
    lock is given back by the sweep, or goes with the connection). An open transaction is still
    rolled back by the pool."""


def _job_from_row(row: Row) -> Job:
    data = dict(zip(_JOB_COLUMNS, row, strict=False))
    for key in ("input", "result", "error"):
        data[key] = unjson(data[key])
    return Job(**data)


def _claimed(rows: Sequence[Row], worker: str, until: float) -> list[Job]:
    """The jobs of a claim's rows (a row of NULLs is a notification's), expired leases first,
    then by priority and age."""
    rows = sorted(
        (r for r in rows if r[0] is not None), key=lambda r: (not r[13], -r[6], r[7], r[12])
    )
    return [claimed_job(r, worker, until) for r in rows]


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """One list per column (the bulk statements take arrays)."""
    return [[row[i] for row in rows] for i in range(width)]


async def _import_jobs(
    con: asyncpg.Connection, jobs: Sequence[Job], state: Mapping[str, StateItems]
) -> list[str]:
    """Insert jobs as they are (see Backend.import_jobs); the ids inserted, in order."""
    if not jobs:
        return []
    rows = [
        (
            *(j.id, j.queue, j.name, j.run_id, j.flow, j.state, j.attempt, j.reclaims),
            *(j.priority, j.run_at, j.created_at, j.finished_at, j.key, j.worker),
            *(j.lease_until, json_or_none(j.input), json_or_none(j.result)),
            json_or_none(j.error),
        )
        for j in jobs
    ]
    done = {r[0] for r in await con.fetch(Q["import_jobs"], *_columns(rows, 18))}
    inserted = [j.id for j in jobs if j.id in done]
    values = [
        (f"job:{job_id}", key, dumps_str(value), expires_at)
        for job_id in inserted
        for key, (value, expires_at) in state.get(job_id, {}).items()
    ]
    if values:
        await con.execute(Q["state_set"], *_columns(values, 4))
    return inserted


def _event(run_id: str, row: Row) -> Event:
    seq, ts, type_, flow, step, attempt, data = row
    return {
        "seq": seq,
        "id": f"{run_id}:{seq}",
        "ts": iso(ts),
        "type": type_,
        "run_id": run_id,
        "flow": flow,
        "step": step,
        "attempt": attempt,
        "data": unjson(data),
    }


class PostgresBackend:
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

    # -- enqueue and claim ----------------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        if not jobs:
            return []
        ts = now()
        async with self._conn() as con:
            cols = job_columns(jobs, ts)
            rows = await con.fetch(Q["enqueue"], *cols, self.settings.channel)
            inserted = {r[0] for r in rows if r[0] is not None}
            ids = []
            for job in jobs:
                if job.id in inserted or job.key is None:
                    ids.append(job.id)
                else:  # deduplicated by key: the job that stands for it
                    ids.append(
                        await con.fetchval(Q["job_standing_for"], job.id, job.queue, job.key)
                    )
        self._notify_local()
        return ids

    async def claim(
        self,
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> list[Job]:
        if (queues is not None and not queues) or limit <= 0:
            return []
        ts = now()
        until = ts + lease
        wanted = None if queues is None else list(queues)
        rows = await self._fetch(
            _CLAIM,
            *(ts, wanted, list(exclude), limit, worker, until, LEASE_LOST, 0),
            planned=not self._drained,  # see open: a claim of an idle queue keeps cached plans
        )
        jobs = _claimed(rows, worker, until)
        self._drained = len(jobs) < limit
        return jobs

    async def heartbeat(self, worker: str, job_ids: Sequence[str], lease: float) -> list[str]:
        if not job_ids:
            return []
        rows = await self._fetch(Q["heartbeat"], list(job_ids), worker, now() + lease, planned=True)
        held = {r[0] for r in rows}
        return [j for j in job_ids if j in held]

    async def release(self, worker: str, job_ids: Sequence[str]) -> None:
        channel = self.settings.channel

        async def work(con: asyncpg.Connection) -> None:
            await con.execute(Q["release"], list(job_ids), worker)
            await con.execute(Q["notify"], channel, "")

        await self._tx(work)
        self._notify_local()

    # -- commit ---------------------------------------------------------------------------------
    async def commit(self, items: Sequence[CommitItem]) -> list[list[Event]]:
        ts = now()
        channel = self.settings.channel
        planned = len(items) > 1  # a worker's batch (see open); a lone item keeps cached plans
        out = None
        if not any(i.run_id is not None or i.attempt_of is not None for i in items):
            async with self._conn(planned) as con:
                out = await commit_unlocked(con, items, ts, channel)
        if out is None:
            out = await self._commit_batch(items, ts, channel, planned)
        self._notify_local()
        return out

    async def commit_and_claim(
        self,
        items: Sequence[CommitItem],
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> tuple[list[list[Event]], list[Job]]:
        """``commit``, then ``claim``, in one transaction (an optional capability: the worker's
        group commit fills the slots its commit frees, one round trip instead of two). A batch
        that only finishes function jobs is one statement; otherwise the claim is one more
        statement of the commit's transaction, after its writes (so it can claim the jobs the
        commit enqueued). The claim is made only if the commit applied.

        While the latest claim came back short (the queues were drained), a commit claims only
        if it enqueued jobs itself: a claim that would find nothing would only make the commit
        slower (the worker claims when a notification says that jobs came)."""
        if limit <= 0 or (queues is not None and not queues):
            return await self.commit(items), []
        ts = now()
        until = ts + lease
        channel = self.settings.channel
        wanted = None if queues is None else list(queues)
        claim = (ts, wanted, list(exclude), limit, worker, until, LEASE_LOST)
        fast = finished_jobs(items, ts)
        if fast is not None:
            out, columns = fast
            if self._drained:
                async with self._conn(planned=True) as con:
                    await con.execute(Q["update_jobs_notify"], ts, *columns, channel)
                self._notify_local()
                return out, []
            rows = await self._fetch(_COMMIT_CLAIM, *claim, 0, *columns, channel, planned=True)
        else:

            async def then_claim(con: asyncpg.Connection) -> tuple[list[list[Event]], Any]:
                events, enqueued = await commit_counted(con, items, ts, channel)
                if self._drained and not enqueued:
                    return events, None
                written = sum(len(e) for e in events)  # their feed positions come first
                return events, await con.fetch(_CLAIM, *claim, written)

            out, rows = await self._commit_batch_then(then_claim, planned=True)
            if rows is None:
                self._notify_local()
                return out, []
        self._notify_local()
        jobs = _claimed(rows, worker, until)
        self._drained = len(jobs) < limit
        return out, jobs

    async def _commit_batch(
        self, items: Sequence[CommitItem], ts: float, channel: str, planned: bool = False
    ) -> list[list[Event]]:
        return await self._commit_batch_then(
            lambda con: commit_batch(con, items, ts, channel), planned
        )

    async def _commit_batch_then(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], planned: bool = False
    ) -> T:
        # A run that did not exist cannot be locked: when two batches create the same run (a
        # given run id), the second one's insert fails once the first commits. It runs again,
        # then deciding on the run the first one created (as the other backends do).
        for attempt in range(_RETRIES):
            try:
                return await self._tx(work, planned)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "runs_pkey" or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    # -- runs and events ------------------------------------------------------------------------
    async def append_events(self, run_id: str, events: Sequence[NewEvent]) -> list[Event]:
        if not events:
            return []
        ts = now()
        channel = self.settings.channel

        async def work(con: asyncpg.Connection) -> list[Event]:
            from flowtide.backends.base import Transition

            item = CommitItem(run_id, lambda _: Transition(events=list(events)))
            return (await commit_batch(con, [item], ts, channel))[0]

        out = await self._tx(work)
        self._notify_local()
        return out

    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        rows = await self._fetch(Q["read_events"], run_id, after, limit)
        return [_event(run_id, r) for r in rows]

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        async with self._conn() as con:
            horizon = await con.fetchval(Q["feed_horizon"], self.settings.application_name)
            rows = await con.fetch(Q["read_feed"], after, horizon, limit)
        return [(r[0], _event(r[1], r[2:])) for r in rows]

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._fetch(Q["select_run"], run_id)
        return record_from_row(rows[0]) if rows else None

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        rows = await self._fetch(Q["list_runs"], flow, status, cursor, limit + 1)
        items = [record_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, items[-1].run_id if more and items else None)

    # -- state ----------------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]:
        rows = await self._fetch(Q["state_get"], scope, key, now())
        return (True, loads(rows[0][0])) if rows else (False, None)

    async def state_items(self, scope: str) -> dict[str, Any]:
        rows = await self._fetch(Q["state_items"], scope, now())
        return {key: loads(value) for key, value in rows}

    # -- queues and jobs ------------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        async with self._conn() as con:
            for queue, state, n in await con.fetch(Q["queue_counts"]):
                counts.setdefault(queue, {})[state] = n
            for (queue,) in await con.fetch(Q["queue_names"]):
                counts.setdefault(queue, {})
        return counts

    async def set_paused(self, queue: str, paused: bool) -> None:
        channel = self.settings.channel

        async def work(con: asyncpg.Connection) -> None:
            await con.execute(Q["set_paused"], queue, paused)
            await con.execute(Q["notify"], channel, "")

        await self._tx(work)
        self._notify_local()

    async def paused_queues(self) -> set[str]:
        return {r[0] for r in await self._fetch(Q["paused_queues"])}

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._fetch(Q["select_job"], job_id)
        return _job_from_row(rows[0]) if rows else None

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        start = int(cursor) if cursor else 1 << 62
        rows = await self._fetch(Q["list_jobs"], queue, state, start, limit + 1)
        items = [_job_from_row(r[:-1]) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, str(rows[limit - 1][-1]) if more else None)

    async def delete_job(self, job_id: str) -> bool:
        async with self._conn() as con:
            if (await con.execute(Q["delete_job"], job_id)).endswith(" 1"):
                return True
            if await con.fetchval(Q["job_exists"], job_id):
                raise ValueError("an active job cannot be deleted")
            return False

    async def sweep(self) -> dict[str, int] | None:
        """Apply the retention policy now (see ``retention``); None if another process is."""
        if self._pool is None:
            raise BackendUnavailable("the PostgreSQL backend is not open")
        return await retention.sweep(self._pool, self.schema, self.settings.retention)

    # -- timers ---------------------------------------------------------------------------------
    async def claim_timers(self, now_ts: float, limit: int, lease: float) -> list[Timer]:
        rows = await self._fetch(Q["timers_claim"], now_ts + lease, now_ts, limit)
        rows = sorted(rows, key=lambda r: r[1])
        return [Timer(r[0], now_ts + lease, r[2], unjson(r[3])) for r in rows]

    async def delete_timer(self, timer_id: str) -> None:
        await self._execute(Q["timer_delete"], [timer_id])

    async def list_timers(self) -> list[Timer]:
        rows = await self._fetch(Q["timers_list"])
        return [Timer(r[0], r[1], r[2], unjson(r[3])) for r in rows]

    # -- records --------------------------------------------------------------------------------
    async def get_record(self, collection: str, key: str) -> Any:
        rows = await self._fetch(Q["record_get"], collection, key, now())
        return loads(rows[0][0]) if rows else None

    async def list_records(
        self, collection: str, limit: int = 100, after: str | None = None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        args: list[Any] = [collection, now(), limit]
        if after is not None:
            args.append(after)
        rows = await self._fetch(_RECORDS_LIST[after is not None, reverse], *args)
        return [(r[0], loads(r[1])) for r in rows]

    async def put_record(
        self,
        collection: str,
        key: str,
        value: Any,
        *,
        expires_at: float | None = None,
        only_new: bool = False,
    ) -> Any:
        if value is None:  # deletes, as a RecordOp does (keeping a live one with only_new)
            if only_new and (found := await self.get_record(collection, key)) is not None:
                return found
            await self.delete_record(collection, key)
            return None
        text = dumps_str(value)
        if not only_new:
            await self._execute(Q["record_set"], [collection], [key], [text], [expires_at])
            return None

        async def work(con: asyncpg.Connection) -> Any:
            args = (collection, key, text, expires_at, now())
            if await con.fetchval(Q["record_put_new"], *args) is not None:
                return None
            # the live record that won is locked by the statement above: it is still there
            return loads(await con.fetchval(Q["record_stored"], collection, key))

        return await self._tx(work)

    async def delete_record(self, collection: str, key: str) -> bool:
        ts = now()
        rows = await self._fetch(Q["record_delete"], [collection], [key])
        return any(r[0] is None or r[0] > ts for r in rows)

    async def add_to_counter(
        self, collection: str, key: str, amount: int = 1, expires_at: float | None = None
    ) -> int:
        async with self._conn() as con:
            value = await con.fetchval(Q["record_add"], collection, key, amount, expires_at, now())
        return int(value)

    async def record_collections(self) -> list[str]:
        return [r[0] for r in await self._fetch(Q["record_collections"], now())]

    # -- migration ------------------------------------------------------------------------------
    async def export_state(self, scope: str) -> StateItems:
        rows = await self._fetch(Q["state_export"], scope, now())
        return {r[0]: (loads(r[1]), r[2]) for r in rows}

    async def export_records(
        self, collection: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, Any, float | None]]:
        rows = await self._fetch(Q["records_export"], collection, now(), after, limit)
        return [(r[0], loads(r[1]), r[2]) for r in rows]

    async def import_run(self, run: RunImport) -> bool:
        r = run.record
        events = [exact_event(e) for e in run.events]
        last_seq = max((int(e["seq"]) for e in events), default=0)
        event_rows = [
            (
                e["seq"],
                i,
                epoch(e["ts"]) if e["ts"] is not None else r.updated_at,
                e["type"],
                e["flow"] if e["flow"] is not None else r.flow,
                e["step"],
                e["attempt"],
                json_or_none(e["data"]),
            )
            for i, e in enumerate(events, 1)
        ]
        state = [(r.run_id, k, dumps_str(v), exp) for k, (v, exp) in run.state.items()]
        # one row per id (a statement's upsert may meet each row once): the last one wins
        timers = list(
            {t.id: (t.id, t.due, t.kind, json_or_none(t.data)) for t in run.timers}.values()
        )
        puts = list(
            {
                (rec.collection, rec.key): (
                    rec.collection,
                    rec.key,
                    dumps_str(rec.value),
                    rec.expires_at,
                )
                for rec in run.records
                if rec.value is not None
            }.values()
        )
        deletes = [(rec.collection, rec.key) for rec in run.records if rec.value is None]
        channel = self.settings.channel

        async def work(con: asyncpg.Connection) -> bool:
            created = await con.fetchval(
                Q["import_run"],
                *(r.run_id, r.flow, r.status, r.version, last_seq, r.started_at),
                *(r.updated_at, r.completed_at, dumps_str(r.body())),
            )
            if created is None:
                return False
            if event_rows:
                await con.execute(Q["import_events"], r.run_id, *_columns(event_rows, 8))
            if state:
                await con.execute(Q["state_set"], *_columns(state, 4))
            await _import_jobs(con, run.jobs, {})
            if timers:
                await con.execute(Q["timer_set"], *_columns(timers, 4))
            if deletes:
                await con.execute(Q["record_delete"], *_columns(deletes, 2))
            if puts:
                await con.execute(Q["record_set"], *_columns(puts, 4))
            await con.execute(Q["notify"], channel, r.run_id)
            return True

        done = await self._tx(work)
        self._notify_local()
        return done

    async def import_jobs(
        self, jobs: Sequence[Job], state: Mapping[str, StateItems] | None = None
    ) -> list[str]:
        if not jobs:
            return []
        channel = self.settings.channel

        async def work(con: asyncpg.Connection) -> list[str]:
            inserted = await _import_jobs(con, jobs, state or {})
            await con.execute(Q["notify"], channel, "")
            return inserted

        ids = await self._tx(work)
        self._notify_local()
        return ids
