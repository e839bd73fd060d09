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
- Connections (``_connection``): two pools, and a connection goes back to its pool without a
  reset round trip (``_keep_session``).
- Wake-ups: every write that matters sends ``NOTIFY`` (ids only) on the schema's channel; one
  LISTEN connection per process wakes local waiters, with a fallback poll while it is down.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from flowtide._util.clock import iso, now
from flowtide._util.jsonutil import loads
from flowtide.backends._common import (
    LEASE_LOST,
    claimed_job,
    unjson,
)
from flowtide.backends.base import (
    BackendUnavailable,
    CommitItem,
    Job,
    Page,
    Timer,
)
from flowtide.backends.postgres import retention
from flowtide.backends.postgres._commit import (
    Q,
    Row,
    commit_batch,
    commit_counted,
    commit_unlocked,
    finished_jobs,
    job_columns,
    record_from_row,
)
from flowtide.backends.postgres._store import PostgresStore
from flowtide.events import Event, NewEvent, RunRecord

__all__ = ["PostgresBackend"]

T = TypeVar("T")
_JOB_COLUMNS = [
    *("id", "queue", "name", "run_id", "flow", "state", "attempt", "reclaims", "priority"),
    *("run_at", "created_at", "finished_at", "key", "worker", "lease_until", "input"),
    *("result", "error"),
]
_RETRIES = 8  # a commit that raced another to create the same run runs again


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


class PostgresBackend(PostgresStore):
    """Jobs, runs, events, state, queues and timers; connections, records and migration
    come from the bases (``_connection``, ``_store``)."""

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
