"""SQLite records (keyed collections) and the verbatim import/export of migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from flowtide._util.clock import now
from flowtide._util.jsonutil import dumps_str, loads
from flowtide.backends._common import exact_event
from flowtide.backends._sql import load_queries
from flowtide.backends.base import Job, RecordOp, RunImport, StateItems
from flowtide.backends.sqlite._connection import SQLiteConnections

__all__ = ["Q", "SQLiteStore", "as_json"]

Q = load_queries("flowtide.backends.sqlite")
PURGE_EVERY = 60.0  # seconds between deletions of expired records (by a write of records)
PURGE_BATCH = 500  # expired records deleted by one such write
_RECORDS_LIST = {
    (after, reverse): Q["records_list"]
    .replace("{after}", "" if not after else "AND key < ?" if reverse else "AND key > ?")
    .replace("{order}", "DESC" if reverse else "ASC")
    for after in (False, True)
    for reverse in (False, True)
}


def as_json(value: Any) -> str | None:
    return None if value is None else dumps_str(value)


class SQLiteStore(SQLiteConnections):
    _next_purge = 0.0  # when a write of records next deletes expired ones (see _purge)

    @staticmethod
    def _record_op(db: sqlite3.Connection, rec: RecordOp, ts: float) -> None:
        if rec.add:  # increments, as add_to_counter does
            adding = (rec.collection, rec.key, dumps_str(rec.add), rec.expires_at, ts, rec.add)
            db.execute(Q["record_add"], adding).fetchall()
        elif rec.value is None:
            db.execute(Q["record_delete"], (rec.collection, rec.key)).fetchall()
        else:
            params = (rec.collection, rec.key, dumps_str(rec.value), rec.expires_at)
            db.execute(Q["record_put"], params)

    # -- records ----------------------------------------------------------------------------------
    def _purge(self, db: sqlite3.Connection, ts: float) -> None:
        """Now and then, inside a write of records, delete a batch of expired records (they
        are absent already; this keeps the table from growing with them)."""
        if ts >= self._next_purge:
            self._next_purge = ts + PURGE_EVERY
            db.execute(Q["records_purge"], (ts, PURGE_BATCH))

    async def get_record(self, collection: str, key: str) -> Any:
        def work(db: sqlite3.Connection) -> Any:
            row = db.execute(Q["record_get"], (collection, key, now())).fetchone()
            return None if row is None else loads(row[0])

        return await self._read(work)

    async def list_records(
        self, collection: str, limit: int = 100, after: str | None = None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        sql = _RECORDS_LIST[after is not None, reverse]

        def work(db: sqlite3.Connection) -> list[tuple[str, Any]]:
            params: tuple[Any, ...] = (collection, now())
            if after is not None:
                params += (after,)
            rows = db.execute(sql, (*params, limit)).fetchall()
            return [(key, loads(value)) for key, value in rows]

        return await self._read(work)

    async def put_record(
        self,
        collection: str,
        key: str,
        value: Any,
        *,
        expires_at: float | None = None,
        only_new: bool = False,
    ) -> Any:
        text = None if value is None else dumps_str(value)  # None deletes, as in a commit

        def work(db: sqlite3.Connection) -> Any:
            ts = now()
            self._purge(db, ts)
            if only_new:
                if text is None:
                    row = db.execute(Q["record_get"], (collection, key, ts)).fetchone()
                    if row is not None:
                        return loads(row[0])
                else:
                    params = (collection, key, text, expires_at, ts)
                    if db.execute(Q["record_put_new"], params).fetchall():
                        return None
                    row = db.execute(Q["record_stored"], (collection, key)).fetchone()
                    return loads(row[0])
            if text is None:
                db.execute(Q["record_delete"], (collection, key)).fetchall()
            else:
                db.execute(Q["record_put"], (collection, key, text, expires_at))
            return None

        return await self._short_write(work)

    async def delete_record(self, collection: str, key: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            ts = now()
            rows = db.execute(Q["record_delete"], (collection, key)).fetchall()
            return any(exp is None or exp > ts for (exp,) in rows)

        return await self._short_write(work)

    async def add_to_counter(
        self, collection: str, key: str, amount: int = 1, expires_at: float | None = None
    ) -> int:
        def work(db: sqlite3.Connection) -> int:
            ts = now()
            self._purge(db, ts)
            params = (collection, key, dumps_str(amount), expires_at, ts, amount)
            [(value,)] = db.execute(Q["record_add"], params).fetchall()
            return int(value)

        return await self._short_write(work)

    async def record_collections(self) -> list[str]:
        def work(db: sqlite3.Connection) -> list[str]:
            return [c for (c,) in db.execute(Q["record_collections"], (now(),))]

        return await self._read(work)

    # -- migration --------------------------------------------------------------------------------
    async def export_state(self, scope: str) -> StateItems:
        def work(db: sqlite3.Connection) -> StateItems:
            rows = db.execute(Q["state_export"], (scope, now())).fetchall()
            return {key: (loads(value), exp) for key, value, exp in rows}

        return await self._read(work)

    async def export_records(
        self, collection: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, Any, float | None]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, Any, float | None]]:
            rows = db.execute(Q["records_export"], (collection, now(), after, limit)).fetchall()
            return [(key, loads(value), exp) for key, value, exp in rows]

        return await self._read(work)

    @staticmethod
    def _import_jobs(
        db: sqlite3.Connection, jobs: Sequence[Job], state: Mapping[str, StateItems]
    ) -> list[str]:
        inserted = []
        for j in jobs:
            params = (
                *(j.id, j.queue, j.name, j.run_id, j.flow, j.state, j.attempt, j.reclaims),
                *(j.priority, j.run_at, j.created_at, j.finished_at, j.key, j.worker),
                *(
                    j.lease_until,
                    as_json(j.input),
                    as_json(j.result),
                    as_json(j.error),
                ),
            )
            if db.execute(Q["import_job"], params).rowcount != 1:
                continue
            inserted.append(j.id)
            for key, (value, expires_at) in state.get(j.id, {}).items():
                db.execute(Q["state_set"], (f"job:{j.id}", key, dumps_str(value), expires_at))
        return inserted

    async def import_run(self, run: RunImport) -> bool:
        r = run.record
        events = [exact_event(e) for e in run.events]
        last_seq = max((int(e["seq"]) for e in events), default=0)

        def work(db: sqlite3.Connection) -> bool:
            body = dumps_str(r.body())
            params = (r.run_id, r.flow, r.status, r.version, last_seq, r.started_at)
            if (
                db.execute(Q["import_run"], (*params, r.updated_at, r.completed_at, body)).rowcount
                != 1
            ):
                return False
            db.executemany(
                Q["insert_event"],
                [(r.run_id, e["seq"], e["type"], dumps_str(e)) for e in events],
            )
            for key, (value, expires_at) in run.state.items():
                db.execute(Q["state_set"], (r.run_id, key, dumps_str(value), expires_at))
            self._import_jobs(db, run.jobs, {})
            for timer in run.timers:
                db.execute(Q["timer_set"], (timer.id, timer.due, timer.kind, as_json(timer.data)))
            ts = now()
            for rec in run.records:
                self._record_op(db, rec, ts)
            return True

        done: bool = await self._run(self._write, work)
        self._notifier.notify()
        return done

    async def import_jobs(
        self, jobs: Sequence[Job], state: Mapping[str, StateItems] | None = None
    ) -> list[str]:
        if not jobs:
            return []
        ids: list[str] = await self._run(
            self._write, lambda db: self._import_jobs(db, jobs, state or {})
        )
        self._notifier.notify()
        return ids
