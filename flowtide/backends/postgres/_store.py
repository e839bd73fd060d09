"""PostgreSQL records (keyed collections) and the verbatim import/export of migration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from flowtide._util.clock import now
from flowtide._util.jsonutil import dumps_str, loads
from flowtide.backends._common import epoch, exact_event
from flowtide.backends.base import Job, RunImport, StateItems
from flowtide.backends.postgres._commit import Q, json_or_none
from flowtide.backends.postgres._connection import PostgresConnections

__all__ = ["PostgresStore", "columns"]

_RECORDS_LIST = {
    (after, reverse): Q["records_list"]
    .replace("{after}", "" if not after else "AND key < $4" if reverse else "AND key > $4")
    .replace("{order}", "DESC" if reverse else "ASC")
    for after in (False, True)
    for reverse in (False, True)
}


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
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
    done = {r[0] for r in await con.fetch(Q["import_jobs"], *columns(rows, 18))}
    inserted = [j.id for j in jobs if j.id in done]
    values = [
        (f"job:{job_id}", key, dumps_str(value), expires_at)
        for job_id in inserted
        for key, (value, expires_at) in state.get(job_id, {}).items()
    ]
    if values:
        await con.execute(Q["state_set"], *columns(values, 4))
    return inserted


class PostgresStore(PostgresConnections):
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
                await con.execute(Q["import_events"], r.run_id, *columns(event_rows, 8))
            if state:
                await con.execute(Q["state_set"], *columns(state, 4))
            await _import_jobs(con, run.jobs, {})
            if timers:
                await con.execute(Q["timer_set"], *columns(timers, 4))
            if deletes:
                await con.execute(Q["record_delete"], *columns(deletes, 2))
            if puts:
                await con.execute(Q["record_set"], *columns(puts, 4))
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
