"""Applying a batch of transitions in one transaction with a fixed number of statements.

The runs of the batch are locked (``FOR UPDATE``, in id order, so two batches never deadlock on
them) and read; each item's pure ``decide`` runs against the newest record of its run (the
stored one, or the one an earlier item of the batch produced); then every write of the batch
goes out as one bulk statement per kind, in an order that keeps the batch's meaning: runs,
events, job updates, new jobs, cancellations (which therefore also reach jobs that earlier
items of the batch enqueued), then state and timer operations in item order, and record
operations in the order of each key's own (see :func:`_record_layers`).
"""

from __future__ import annotations

import bisect
import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg

from flowtide._util.jsonutil import dumps_str, loads
from flowtide.backends._common import build_event
from flowtide.backends._sql import load_queries
from flowtide.backends.base import CommitItem, Job, Transition
from flowtide.events import Event, RunRecord

__all__ = [
    "Q",
    "Row",
    "commit_batch",
    "commit_counted",
    "commit_unlocked",
    "finished_jobs",
    "insert_jobs",
    "job_columns",
    "json_or_none",
    "record_from_row",
]

Q = load_queries("flowtide.backends.postgres")
Row = asyncpg.Record | Sequence[Any]
NOTIFY_LIMIT = 7000  # bytes of ids in one notification (PostgreSQL's limit is 8000)


def json_or_none(value: Any) -> str | None:
    return None if value is None else dumps_str(value)


def record_from_row(row: Row) -> RunRecord:
    run_id, flow, status, version, started, updated, completed, body = row[:8]
    return RunRecord.from_parts(
        run_id, flow, status, version, started, updated, completed, loads(body)
    )


def job_columns(jobs: Sequence[Job], ts: float) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in range(11)]
    for job in jobs:
        run_at = job.run_at or ts
        values = (
            job.id,
            job.queue,
            job.name,
            job.run_id,
            job.flow,
            "delayed" if run_at > ts else "waiting",
            job.priority,
            run_at,
            job.created_at or ts,
            job.key,
            json_or_none(job.input),
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    return cols


async def insert_jobs(con: asyncpg.Connection, jobs: Sequence[Job], ts: float) -> list[str]:
    """Insert jobs (deduplicated by id and by key); the id that stands for each."""
    if not jobs:
        return []
    inserted = {r[0] for r in await con.fetch(Q["insert_jobs"], *job_columns(jobs, ts))}
    out = []
    for job in jobs:
        if job.id in inserted or job.key is None:
            out.append(job.id)
        else:
            out.append(await con.fetchval(Q["job_standing_for"], job.id, job.queue, job.key))
    return out


class _Plan:
    """The writes of one batch, gathered per kind."""

    def __init__(self, ts: float, stored: dict[str, RunRecord], seqs: dict[str, int]) -> None:
        self.ts = ts
        self.stored = stored
        self.old_versions = {rid: r.version for rid, r in stored.items()}
        self.seqs = dict(seqs)
        self.records: dict[str, RunRecord] = {}  # newest record written by the batch
        self.events: list[tuple[Any, ...]] = []
        self.job_updates: dict[str, tuple[Any, ...]] = {}
        self.new_jobs: list[Job] = []
        self.cancel_runs: list[str] = []
        self.state_ops: list[tuple[str, tuple[Any, ...]]] = []
        self.timer_ops: list[tuple[str, tuple[Any, ...]]] = []
        self.record_ops: list[tuple[str, tuple[Any, ...]]] = []
        self.touched: set[str] = set()

    def newest(self, run_id: str | None) -> RunRecord | None:
        if run_id is None:
            return None
        return self.records.get(run_id) or self.stored.get(run_id)

    def add(self, run_id: str | None, before: RunRecord | None, t: Transition) -> list[Event]:
        if t.run is not None:
            run_id = t.run.run_id
            self.records[run_id] = t.run
            self.seqs.setdefault(run_id, 0)
        events: list[Event] = []
        if run_id is not None and t.events and run_id in self.seqs:
            current = self.newest(run_id)
            flow = before.flow if before is not None else (current.flow if current else "")
            seq = self.seqs[run_id]
            for new in t.events:
                seq += 1
                event = build_event(run_id, flow, seq, new, self.ts)
                events.append(event)
                self.events.append(
                    (run_id, seq, len(self.events) + 1, new.type, flow, new.step, new.attempt,
                     json_or_none(new.data))
                )  # fmt: skip
            self.seqs[run_id] = seq
        if run_id is not None and (t.run is not None or events):
            self.touched.add(run_id)
        for u in t.jobs:
            ra = (u.run_at or self.ts) if u.state in ("waiting", "delayed") else None
            state = ("delayed" if ra > self.ts else "waiting") if ra is not None else u.state
            self.job_updates.pop(u.job_id, None)
            self.job_updates[u.job_id] = (
                u.job_id, state, json_or_none(u.error), json_or_none(u.result), ra,
                u.reset_attempts,
            )  # fmt: skip
        self.new_jobs.extend(t.enqueue)
        if t.cancel_run_jobs and run_id is not None:
            self.cancel_runs.append(run_id)
        for op in t.state:
            if op.op == "delete":
                self.state_ops.append(("state_delete", (op.scope, op.key)))
            else:
                value = (op.scope, op.key, dumps_str(op.value), op.expires_at)
                self.state_ops.append(("state_set", value))
        if t.clear_state is not None:
            self.state_ops.append(("state_clear", (t.clear_state,)))
        for timer in t.timers:
            row = (timer.id, timer.due, timer.kind, json_or_none(timer.data))
            self.timer_ops.append(("timer_set", row))
        for timer_id in t.cancel_timers:
            self.timer_ops.append(("timer_delete", (timer_id,)))
        for rec in t.records:
            if rec.add:
                adding = (rec.collection, rec.key, rec.add, rec.expires_at)
                self.record_ops.append(("records_add", adding))
            elif rec.value is None:
                self.record_ops.append(("record_delete", (rec.collection, rec.key)))
            else:
                value = (rec.collection, rec.key, dumps_str(rec.value), rec.expires_at)
                self.record_ops.append(("record_set", value))
        return events

    @property
    def empty(self) -> bool:
        return not (
            self.touched
            or self.job_updates
            or self.new_jobs
            or self.cancel_runs
            or self.state_ops
            or self.timer_ops
            or self.record_ops
        )

    async def write(self, con: asyncpg.Connection) -> None:
        ts = self.ts
        created = [r for rid, r in self.records.items() if rid not in self.stored]
        updated = [r for rid, r in self.records.items() if rid in self.stored]
        if created:
            await con.execute(Q["insert_runs"], *_columns(
                (r.run_id, r.flow, r.status, r.version, self.seqs[r.run_id], r.started_at,
                 r.updated_at, r.completed_at, dumps_str(r.body())) for r in created
            ), )  # fmt: skip
        if updated:
            status = await con.execute(Q["update_runs"], *_columns(
                (r.run_id, r.status, r.version, self.seqs[r.run_id], r.updated_at,
                 r.completed_at, dumps_str(r.body()), self.old_versions[r.run_id])
                for r in updated
            ))  # fmt: skip
            if int(status.split()[-1]) != len(updated):
                raise RuntimeError("a run changed during its own transaction")
        only_events = [rid for rid in self.touched if rid not in self.records]
        if only_events:
            await con.execute(Q["set_last_seq"], only_events, [self.seqs[r] for r in only_events])
        if self.events:
            await con.execute(Q["insert_events"], ts, *_columns(self.events))
        if self.job_updates:
            await con.execute(Q["update_jobs"], ts, *_columns(self.job_updates.values()))
        if self.new_jobs:
            await con.execute(Q["insert_jobs"], *job_columns(self.new_jobs, ts))
        if self.cancel_runs:
            await con.execute(Q["cancel_run_jobs"], ts, self.cancel_runs)
        await _grouped(con, self.state_ops)
        await _grouped(con, self.timer_ops)
        if self.record_ops:
            await _record_statements(con, self.record_ops, ts)

    def notify_payload(self) -> str:
        payload = ",".join(sorted(self.touched))
        return payload if len(payload) <= NOTIFY_LIMIT else ""


def _columns(rows: Any) -> list[list[Any]]:
    rows = list(rows)
    if not rows:
        return []
    return [list(col) for col in zip(*rows, strict=True)]


async def _grouped(con: asyncpg.Connection, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Run consecutive operations of one kind as one statement, in order. An upsert meets each
    key once per statement, so a key set twice in a row keeps its last value."""
    i = 0
    while i < len(ops):
        kind = ops[i][0]
        j = i
        while j < len(ops) and ops[j][0] == kind:
            j += 1
        rows = [args for _, args in ops[i:j]]
        if kind in ("state_set", "timer_set", "record_set"):
            width = 1 if kind == "timer_set" else 2
            last = {row[:width]: row for row in rows}
            rows = list(last.values())
        await con.execute(Q[kind], *_columns(rows))
        i = j


def _record_layers(
    ops: list[tuple[str, tuple[Any, ...]]],
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Record operations as few statements (layers) of one kind each as keep every key's own
    order: operations on different keys commute, so each goes into the earliest layer of its
    kind that comes after the last layer holding its key (or is that layer). A layer meets each
    key once: a key set twice keeps its last value, adds to one key sum up (the first one's
    expires_at is the one a creation uses)."""
    layers: list[tuple[str, dict[tuple[str, str], tuple[Any, ...]]]] = []
    of_kind: dict[str, list[int]] = {}  # kind -> indexes of its layers, ascending
    where: dict[tuple[str, str], int] = {}  # key -> index of the last layer holding it
    for kind, row in ops:
        key = (row[0], row[1])
        last = where.get(key)
        low = 0 if last is None else last if layers[last][0] == kind else last + 1
        indexes = of_kind.setdefault(kind, [])
        n = bisect.bisect_left(indexes, low)
        if n < len(indexes):
            i = indexes[n]
        else:
            i = len(layers)
            layers.append((kind, {}))
            indexes.append(i)
        rows = layers[i][1]
        held = rows.get(key)
        if held is not None and kind == "records_add":
            row = (*key, held[2] + row[2], held[3])
        rows[key] = row
        where[key] = i
    return [(kind, list(rows.values())) for kind, rows in layers]


async def _record_statements(
    con: asyncpg.Connection, ops: list[tuple[str, tuple[Any, ...]]], ts: float
) -> None:
    if len(ops) == 1:
        kind, row = ops[0]
        layers = [(kind, [row])]
    else:
        layers = _record_layers(ops)
    for kind, rows in layers:
        if kind == "records_add":
            rows.sort()  # one lock order for counters that concurrent batches share
            await con.execute(Q[kind], *_columns(rows), ts)
        else:
            await con.execute(Q[kind], *_columns(rows))


async def commit_batch(
    con: asyncpg.Connection, items: Sequence[CommitItem], ts: float, channel: str
) -> list[list[Event]]:
    """Decide and apply ``items`` inside the caller's transaction."""
    return (await commit_counted(con, items, ts, channel))[0]


async def commit_counted(
    con: asyncpg.Connection, items: Sequence[CommitItem], ts: float, channel: str
) -> tuple[list[list[Event]], int]:
    """:func:`commit_batch`, and how many jobs the batch enqueued."""
    run_ids = sorted({i.run_id for i in items if i.run_id is not None})
    stored: dict[str, RunRecord] = {}
    seqs: dict[str, int] = {}
    if run_ids:
        for row in await con.fetch(Q["lock_runs"], run_ids):
            stored[row[0]] = record_from_row(row)
            seqs[row[0]] = row[8]
    guarded = sorted({i.attempt_of[0] for i in items if i.attempt_of is not None})
    current: dict[str, tuple[str, int]] = {}
    if guarded:
        for row in await con.fetch(Q["lock_job_attempts"], guarded):
            current[row[0]] = (row[1], row[2])
    shared = Counter(i.run_id for i in items)
    plan = _Plan(ts, stored, seqs)
    out: list[list[Event]] = []
    for item in items:
        if item.attempt_of is not None:
            job_id, attempt = item.attempt_of
            if current.get(job_id) != ("active", attempt):
                out.append([])
                continue
        record = plan.newest(item.run_id)
        if record is not None and (shared[item.run_id] > 1 or item.run_id in plan.records):
            record = copy.deepcopy(record)  # a later item reads it: decide must not touch it
        before = plan.newest(item.run_id)
        out.append(plan.add(item.run_id, before, item.decide(record)))
    if not plan.empty:
        await plan.write(con)
        await con.execute(Q["notify"], channel, plan.notify_payload())
    return out, len(plan.new_jobs)


def finished_jobs(
    items: Sequence[CommitItem], ts: float
) -> tuple[list[list[Event]], list[list[Any]]] | None:
    """The fast path of a batch that reads nothing (no run, no attempt guard) and only finishes
    or requeues jobs, as workers of standalone functions commit: its events (none) and the
    columns of ``update_jobs`` ($2 on). None when the batch needs :func:`commit_batch` (which
    decides again: these decisions read nothing, they are pure)."""
    updates: dict[str, tuple[Any, ...]] = {}
    for item in items:
        if item.run_id is not None or item.attempt_of is not None:
            return None
        t = item.decide(None)
        if (
            t.run is not None
            or t.events
            or t.enqueue
            or t.cancel_run_jobs
            or t.state
            or t.clear_state is not None
            or t.timers
            or t.cancel_timers
            or t.records
        ):
            return None
        for u in t.jobs:
            ra = (u.run_at or ts) if u.state in ("waiting", "delayed") else None
            state = ("delayed" if ra > ts else "waiting") if ra is not None else u.state
            updates.pop(u.job_id, None)
            result = None if u.result is None else dumps_str(u.result)
            error = None if u.error is None else dumps_str(u.error)
            updates[u.job_id] = (u.job_id, state, error, result, ra, u.reset_attempts)
    if not updates:
        return None
    return [[] for _ in items], _columns(updates.values())


async def commit_unlocked(
    con: asyncpg.Connection, items: Sequence[CommitItem], ts: float, channel: str
) -> list[list[Event]] | None:
    """:func:`finished_jobs` as one statement, no explicit transaction; None when the batch
    needs :func:`commit_batch`."""
    fast = finished_jobs(items, ts)
    if fast is None:
        return None
    out, columns = fast
    await con.execute(Q["update_jobs_notify"], ts, *columns, channel)
    return out
