"""SQLite backend: WAL, IMMEDIATE write transactions, SQL in named ``.sql`` files.

Several processes can share one file; how connections are run is in ``_connection``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from flowtide._util.clock import now
from flowtide._util.jsonutil import dumps_str, loads
from flowtide.backends._common import (
    build_event,
    claim_events,
    claimed_job,
    unjson,
)
from flowtide.backends.base import (
    CommitItem,
    Job,
    Page,
    Timer,
    Transition,
)
from flowtide.backends.sqlite._store import Q, SQLiteStore, as_json
from flowtide.events import LIFECYCLE_TYPES, Event, NewEvent, RunRecord

__all__ = ["SQLiteBackend"]

T = TypeVar("T")
SMALL_BATCH = 8  # commits this small run inline on the event loop (see _short_write)
_LIFECYCLE = ", ".join(f"'{t}'" for t in sorted(LIFECYCLE_TYPES))
_READ_FEED = Q["read_feed"].replace("{lifecycle}", _LIFECYCLE)
_JOB_COLUMNS = [
    *("id", "queue", "name", "run_id", "flow", "state", "attempt", "reclaims", "priority"),
    *("run_at", "created_at", "finished_at", "key", "worker", "lease_until", "input"),
    *("result", "error"),
]


def _job_from_row(row: Sequence[Any]) -> Job:
    data = dict(zip(_JOB_COLUMNS, row, strict=False))
    for key in ("input", "result", "error"):
        data[key] = unjson(data[key])
    return Job(**data)


def _record_from_row(row: Sequence[Any]) -> RunRecord:
    run_id, flow, status, version, started, updated, completed, body = row[:8]
    return RunRecord.from_parts(
        run_id, flow, status, version, started, updated, completed, loads(body)
    )


class SQLiteBackend(SQLiteStore):
    """The backend protocol on SQLite (see base.Backend for each operation); records and the
    import/export of migration are in ``_store``, connections in ``_connection``."""

    # -- enqueue and claim ------------------------------------------------------------------------
    @staticmethod
    def _insert_jobs(db: sqlite3.Connection, jobs: Sequence[Job], ts: float) -> list[str]:
        ids = []
        for job in jobs:
            run_at = job.run_at or ts
            state = "delayed" if run_at > ts else "waiting"
            cur = db.execute(
                Q["insert_job"],
                (
                    job.id,
                    job.queue,
                    job.name,
                    job.run_id,
                    job.flow,
                    state,
                    job.priority,
                    run_at,
                    job.created_at or ts,
                    job.key,
                    as_json(job.input),
                ),
            )
            if cur.rowcount == 1 or job.key is None:
                ids.append(job.id)
                continue
            row = db.execute(Q["job_by_key"], (job.queue, job.key)).fetchone()
            ids.append(row[0] if row else job.id)
        return ids

    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        ts = now()
        ids: list[str] = await self._short_write(lambda db: self._insert_jobs(db, jobs, ts))
        self._notifier.notify()
        return ids

    @staticmethod
    def _queue_filter(
        queues: Collection[str] | None, exclude: Collection[str]
    ) -> tuple[str, list[str]]:
        sql, params = "", []
        if queues is not None:
            sql += f" AND queue IN ({', '.join('?' * len(queues))})"
            params += list(queues)
        if exclude:
            sql += f" AND queue NOT IN ({', '.join('?' * len(exclude))})"
            params += list(exclude)
        return sql, params

    async def claim(
        self,
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> list[Job]:
        if queues is not None and not queues:
            return []
        ts = now()
        until = ts + lease
        filt, params = self._queue_filter(queues, exclude)
        expired_sql = Q["claim_expired"].replace("{queue_filter}", filt)
        due_sql = Q["claim_due"].replace("{queue_filter}", filt)

        def work(db: sqlite3.Connection) -> list[Job]:
            out = []
            for row in db.execute(expired_sql, (worker, until, ts, *params, limit)).fetchall():
                out.append((claimed_job(row, worker, until), True))
            left = limit - len(out)
            if left > 0:
                for row in db.execute(due_sql, (worker, until, ts, *params, left)).fetchall():
                    out.append((claimed_job(row, worker, until), False))
            for job, reclaimed in out:
                if job.run_id is not None:
                    self._append(db, job.run_id, claim_events(job, reclaimed), ts)
            return [job for job, _ in out]

        return await self._short_write(work)

    async def heartbeat(self, worker: str, job_ids: Sequence[str], lease: float) -> list[str]:
        until = now() + lease

        def work(db: sqlite3.Connection) -> list[str]:
            return [
                job_id
                for job_id in job_ids
                if db.execute(Q["heartbeat"], (until, job_id, worker)).rowcount == 1
            ]

        return await self._short_write(work)

    async def release(self, worker: str, job_ids: Sequence[str]) -> None:
        def work(db: sqlite3.Connection) -> None:
            for job_id in job_ids:
                db.execute(Q["release"], (job_id, worker))

        await self._run(self._write, work)
        self._notifier.notify()

    # -- commit -----------------------------------------------------------------------------------
    async def commit(self, items: Sequence[CommitItem]) -> list[list[Event]]:
        ts = now()

        def work(db: sqlite3.Connection) -> list[list[Event]]:
            out: list[list[Event]] = []
            for item in items:
                if item.attempt_of is not None and not self._current(db, *item.attempt_of):
                    out.append([])
                    continue
                row = None
                if item.run_id is not None:
                    row = db.execute(Q["select_run"], (item.run_id,)).fetchone()
                record = _record_from_row(row) if row is not None else None
                transition = item.decide(record)
                last_seq = row[8] if row is not None else 0
                out.append(self._apply(db, item.run_id, record, last_seq, transition, ts))
            return out

        result: list[list[Event]] = await (
            self._short_write(work) if len(items) <= SMALL_BATCH else self._run(self._write, work)
        )
        self._notifier.notify()
        return result

    @staticmethod
    def _current(db: sqlite3.Connection, job_id: str, attempt: int) -> bool:
        row = db.execute(Q["job_attempt"], (job_id,)).fetchone()
        return row is not None and row[0] == "active" and row[1] == attempt

    def _apply(
        self,
        db: sqlite3.Connection,
        run_id: str | None,
        stored: RunRecord | None,
        last_seq: int,
        t: Transition,
        ts: float,
    ) -> list[Event]:
        flow = stored.flow if stored is not None else (t.run.flow if t.run is not None else "")
        events: list[Event] = []
        if t.run is not None:
            run_id = t.run.run_id
        if run_id is not None and t.events:
            for new in t.events:
                last_seq += 1
                events.append(build_event(run_id, flow, last_seq, new, ts))
            db.executemany(
                Q["insert_event"],
                [(run_id, e["seq"], e["type"], dumps_str(e)) for e in events],
            )
        if t.run is not None:
            r = t.run
            body = dumps_str(r.body())
            if stored is None:
                db.execute(
                    Q["insert_run"],
                    (
                        r.run_id,
                        r.flow,
                        r.status,
                        r.version,
                        last_seq,
                        r.started_at,
                        r.updated_at,
                        r.completed_at,
                        body,
                    ),
                )
            else:
                cur = db.execute(
                    Q["update_run"],
                    (
                        r.status,
                        r.version,
                        last_seq,
                        r.updated_at,
                        r.completed_at,
                        body,
                        r.run_id,
                        stored.version,
                    ),
                )
                if cur.rowcount != 1:
                    raise RuntimeError(f"run {r.run_id} changed during its own transaction")
        elif events and run_id is not None:
            db.execute("UPDATE runs SET last_seq = ? WHERE run_id = ?", (last_seq, run_id))
        for u in t.jobs:
            if u.state in ("waiting", "delayed"):
                run_at = u.run_at or ts
                state = "delayed" if run_at > ts else "waiting"
                db.execute(
                    Q["requeue_job"],
                    (
                        state,
                        as_json(u.error),
                        run_at,
                        u.reset_attempts,
                        u.reset_attempts,
                        u.job_id,
                    ),
                )
            else:
                db.execute(
                    Q["finish_job"],
                    (u.state, as_json(u.error), as_json(u.result), ts, u.job_id),
                )
        if t.cancel_run_jobs and run_id is not None:
            db.execute(Q["cancel_run_jobs"], (ts, f"{run_id}:", f"{run_id};"))
        if t.enqueue:
            self._insert_jobs(db, t.enqueue, ts)
        for op in t.state:
            if op.op == "delete":
                db.execute(Q["state_delete"], (op.scope, op.key))
            else:
                db.execute(Q["state_set"], (op.scope, op.key, dumps_str(op.value), op.expires_at))
        if t.clear_state is not None:
            db.execute(Q["state_clear"], (t.clear_state,))
        for timer in t.timers:
            db.execute(Q["timer_set"], (timer.id, timer.due, timer.kind, as_json(timer.data)))
        for timer_id in t.cancel_timers:
            db.execute(Q["timer_delete"], (timer_id,))
        for rec in t.records:
            self._record_op(db, rec, ts)
        return events

    def _append(
        self, db: sqlite3.Connection, run_id: str, events: Sequence[NewEvent], ts: float
    ) -> list[Event]:
        row = db.execute(Q["bump_seq"], (len(events), run_id)).fetchone()
        if row is None:
            return []
        last, flow = row
        first = last - len(events) + 1
        out = [build_event(run_id, flow, first + i, new, ts) for i, new in enumerate(events)]
        db.executemany(
            Q["insert_event"], [(run_id, e["seq"], e["type"], dumps_str(e)) for e in out]
        )
        return out

    # -- runs and events --------------------------------------------------------------------------
    async def append_events(self, run_id: str, events: Sequence[NewEvent]) -> list[Event]:
        ts = now()
        out: list[Event] = await self._short_write(lambda db: self._append(db, run_id, events, ts))
        self._notifier.notify()
        return out

    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        def work() -> list[Event]:
            params = (run_id, after, -1 if limit is None else limit)
            rows = self.db.execute(Q["read_events"], params).fetchall()
            return [loads(body) for (body,) in rows]

        return await self._run(work)

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        def work() -> list[tuple[int, Event]]:
            rows = self.db.execute(_READ_FEED, (after, limit)).fetchall()
            return [(gid, loads(body)) for gid, body in rows]

        return await self._run(work)

    async def get_run(self, run_id: str) -> RunRecord | None:
        def work(db: sqlite3.Connection) -> RunRecord | None:
            row = db.execute(Q["select_run"], (run_id,)).fetchone()
            return _record_from_row(row) if row is not None else None

        return await self._read(work)

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        sql = (
            "SELECT run_id, flow, status, version, started_at, updated_at, completed_at, body "
            "FROM runs WHERE 1=1"
        )
        params: list[Any] = []
        if flow is not None:
            sql += " AND flow = ?"
            params.append(flow)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if cursor is not None:
            sql += " AND run_id < ?"
            params.append(cursor)
        sql += " ORDER BY run_id DESC LIMIT ?"
        params.append(limit + 1)

        def work() -> Page:
            rows = self.db.execute(sql, params).fetchall()
            items = [_record_from_row(r) for r in rows[:limit]]
            more = len(rows) > limit
            return Page(items, items[-1].run_id if more and items else None)

        return await self._run(work)

    # -- state ------------------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]:
        def work(db: sqlite3.Connection) -> tuple[bool, Any]:
            row = db.execute(Q["state_get"], (scope, key, now())).fetchone()
            return (False, None) if row is None else (True, loads(row[0]))

        return await self._read(work)

    async def state_items(self, scope: str) -> dict[str, Any]:
        def work(db: sqlite3.Connection) -> dict[str, Any]:
            rows = db.execute(Q["state_items"], (scope, now())).fetchall()
            return {key: loads(value) for key, value in rows}

        return await self._read(work)

    # -- queues and jobs --------------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]:
        def work() -> dict[str, dict[str, int]]:
            counts: dict[str, dict[str, int]] = {}
            for queue, state, n in self.db.execute(Q["queue_counts"]):
                counts.setdefault(queue, {})[state] = n
            for (queue,) in self.db.execute("SELECT name FROM queues"):
                counts.setdefault(queue, {})
            return counts

        return await self._run(work)

    async def set_paused(self, queue: str, paused: bool) -> None:
        await self._run(self._write, lambda db: db.execute(Q["set_paused"], (queue, int(paused))))
        self._notifier.notify()

    async def paused_queues(self) -> set[str]:
        return await self._run(lambda: {q for (q,) in self.db.execute(Q["paused_queues"])})

    async def get_job(self, job_id: str) -> Job | None:
        def work(db: sqlite3.Connection) -> Job | None:
            row = db.execute(Q["select_job"], (job_id,)).fetchone()
            return _job_from_row(row) if row is not None else None

        return await self._read(work)

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        start = int(cursor) if cursor else 1 << 62

        def work() -> Page:
            rows = self.db.execute(
                Q["list_jobs"], (queue, state, state, start, limit + 1)
            ).fetchall()
            items = [_job_from_row(r[:-1]) for r in rows[:limit]]
            more = len(rows) > limit
            return Page(items, str(rows[limit - 1][-1]) if more else None)

        return await self._run(work)

    async def delete_job(self, job_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            if db.execute(Q["delete_job"], (job_id,)).rowcount == 1:
                return True
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                raise ValueError("an active job cannot be deleted")
            return False

        return await self._run(self._write, work)

    # -- timers -----------------------------------------------------------------------------------
    async def claim_timers(self, now_ts: float, limit: int, lease: float) -> list[Timer]:
        def work(db: sqlite3.Connection) -> list[Timer]:
            rows = db.execute(Q["timers_claim"], (now_ts + lease, now_ts, limit)).fetchall()
            return [Timer(i, now_ts + lease, kind, unjson(data)) for i, _, kind, data in rows]

        return await self._run(self._write, work)

    async def delete_timer(self, timer_id: str) -> None:
        await self._run(self._write, lambda db: db.execute(Q["timer_delete"], (timer_id,)))

    async def list_timers(self) -> list[Timer]:
        def work(db: sqlite3.Connection) -> list[Timer]:
            rows = db.execute(Q["timers_list"]).fetchall()
            return [Timer(i, due, kind, unjson(data)) for i, due, kind, data in rows]

        return await self._read(work)
