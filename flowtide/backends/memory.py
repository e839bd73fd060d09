"""The in-memory backend (``memory://``): one process, nothing persisted. Tests share it.

All operations run on the event loop without awaiting in the middle, so each one is atomic.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from flowtide._util.clock import now
from flowtide.backends._common import Notifier, build_event, claim_events, exact_event
from flowtide.backends.base import (
    CommitItem,
    Job,
    Page,
    RunImport,
    StateItems,
    StateOp,
    Timer,
    Transition,
)
from flowtide.events import LIFECYCLE_TYPES, Event, NewEvent, RunRecord

__all__ = ["MemoryBackend"]

_UNFINISHED = ("waiting", "delayed", "active")


class MemoryBackend:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._notifier = Notifier()
        self._reset()

    def _reset(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.run_order: list[str] = []
        self.events: dict[str, list[Event]] = {}
        self.feed: list[tuple[int, Event]] = []
        self.jobs: dict[str, Job] = {}
        self.job_order: dict[str, int] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.ready: dict[str, list[tuple[int, float, int, str]]] = {}
        self.delayed: list[tuple[float, int, str]] = []
        self.active: set[str] = set()
        self.state: dict[str, dict[str, tuple[Any, float | None]]] = {}
        self.paused: set[str] = set()
        self.timers: dict[str, Timer] = {}
        self.records: dict[str, dict[str, tuple[Any, float | None]]] = {}
        self._seq = itertools.count(1)
        self._gid = itertools.count(1)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def wait_for_change(self, timeout: float) -> None:
        await self._notifier.wait(timeout)

    # -- jobs ------------------------------------------------------------------------------
    def _insert(self, job: Job, ts: float) -> str:
        existing = self.jobs.get(job.id)
        if existing is not None:
            return existing.id
        if job.key is not None:
            other = self.keys.get((job.queue, job.key))
            if other is not None and self.jobs[other].state in _UNFINISHED:
                return other
        job = copy.copy(job)
        job.created_at = job.created_at or ts
        job.run_at = job.run_at or ts
        job.state = "delayed" if job.run_at > ts else "waiting"
        self.jobs[job.id] = job
        self.job_order[job.id] = next(self._seq)
        if job.key is not None:
            self.keys[(job.queue, job.key)] = job.id
        self._schedule(job)
        return job.id

    def _schedule(self, job: Job) -> None:
        order = self.job_order[job.id]
        if job.state == "delayed":
            heapq.heappush(self.delayed, (job.run_at, order, job.id))
        else:
            # highest priority first, then the job that has been due longest (like run_at in SQL)
            entry = (-job.priority, job.run_at, order, job.id)
            heapq.heappush(self.ready.setdefault(job.queue, []), entry)

    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        ts = now()
        ids = [self._insert(job, ts) for job in jobs]
        self._notifier.notify()
        return ids

    def _promote_delayed(self, ts: float) -> None:
        while self.delayed and self.delayed[0][0] <= ts:
            _, _, job_id = heapq.heappop(self.delayed)
            job = self.jobs.get(job_id)
            if job is not None and job.state == "delayed" and job.run_at <= ts:
                job.state = "waiting"
                self._schedule(job)

    def _take(self, job: Job, worker: str, lease: float, ts: float, reclaimed: bool) -> Job:
        job.state = "active"
        job.attempt += 1
        job.reclaims += int(reclaimed)
        job.worker = worker
        job.lease_until = ts + lease
        self.active.add(job.id)
        if job.run_id is not None and job.run_id in self.runs:
            self._append(job.run_id, claim_events(job, reclaimed), ts)
        return copy.copy(job)

    async def claim(
        self,
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> list[Job]:
        ts = now()
        out: list[Job] = []

        def eligible(queue: str) -> bool:
            return (
                (queues is None or queue in queues)
                and queue not in exclude
                and (queue not in self.paused)
            )

        for job_id in sorted(self.active, key=self.job_order.__getitem__):
            if len(out) >= limit:
                break
            job = self.jobs[job_id]
            if job.lease_until is not None and job.lease_until < ts and eligible(job.queue):
                out.append(self._take(job, worker, lease, ts, reclaimed=True))
        self._promote_delayed(ts)
        while len(out) < limit:
            heads = [(h[0], q) for q, h in self.ready.items() if h and eligible(q)]
            if not heads:
                break
            _, queue = min(heads)
            job_id = heapq.heappop(self.ready[queue])[-1]
            ready = self.jobs.get(job_id)
            if ready is None or ready.state != "waiting":
                continue
            out.append(self._take(ready, worker, lease, ts, reclaimed=False))
        return out

    async def heartbeat(self, worker: str, job_ids: Sequence[str], lease: float) -> list[str]:
        ts = now()
        held = []
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.state == "active" and job.worker == worker:
                job.lease_until = ts + lease
                held.append(job_id)
        return held

    async def release(self, worker: str, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.state == "active" and job.worker == worker:
                job.state, job.worker, job.lease_until = "waiting", None, None
                job.attempt -= 1
                self.active.discard(job_id)
                self._schedule(job)
        self._notifier.notify()

    # -- commit ----------------------------------------------------------------------------
    async def commit(self, items: Sequence[CommitItem]) -> list[list[Event]]:
        ts = now()
        # Decide every item first (each sees the records the earlier items produce), apply
        # only if none raised: a batch is atomic, like one SQL transaction.
        pending: dict[str, RunRecord] = {}
        decided = []
        for item in items:
            if item.attempt_of is not None and not self._current(*item.attempt_of):
                decided.append((item.run_id, Transition()))
                continue
            record = None
            if item.run_id:
                record = pending.get(item.run_id) or self.runs.get(item.run_id)
            transition = item.decide(copy.deepcopy(record))
            if transition.run is not None:
                pending[transition.run.run_id] = copy.deepcopy(transition.run)
            decided.append((item.run_id, transition))
        out = [self._apply(run_id, transition, ts) for run_id, transition in decided]
        self._notifier.notify()
        return out

    def _current(self, job_id: str, attempt: int) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.state == "active" and job.attempt == attempt

    def _apply(self, run_id: str | None, t: Transition, ts: float) -> list[Event]:
        if t.run is not None:
            if t.run.run_id not in self.runs:
                self.run_order.append(t.run.run_id)
            self.runs[t.run.run_id] = t.run
            run_id = t.run.run_id
        for update in t.jobs:
            job = self.jobs.get(update.job_id)
            if job is None:
                continue
            job.state, job.worker, job.lease_until = update.state, None, None
            job.error, job.result = update.error, update.result
            self.active.discard(job.id)
            if update.reset_attempts:
                job.attempt, job.reclaims = 0, 0
            if update.state in ("waiting", "delayed"):
                job.run_at = update.run_at or ts
                job.state = "delayed" if job.run_at > ts else "waiting"
                job.finished_at = None
                self._schedule(job)
            else:
                job.finished_at = ts
        if t.cancel_run_jobs and run_id is not None:
            for job in self.jobs.values():
                if job.run_id == run_id and job.state in ("waiting", "delayed"):
                    job.state, job.finished_at = "canceled", ts
        for job in t.enqueue:
            self._insert(job, ts)
        for op in t.state:
            self._state_op(op)
        if t.clear_state is not None:
            self.state.pop(t.clear_state, None)
        for timer in t.timers:
            self.timers[timer.id] = copy.copy(timer)
        for timer_id in t.cancel_timers:
            self.timers.pop(timer_id, None)
        for rec in t.records:
            if rec.add:
                self._add(rec.collection, rec.key, rec.add, rec.expires_at)
            else:
                self._put(rec.collection, rec.key, rec.value, rec.expires_at)
        return self._append(run_id, t.events, ts) if run_id and t.events else []

    def _state_op(self, op: StateOp) -> None:
        scope = self.state.setdefault(op.scope, {})
        if op.op == "delete":
            scope.pop(op.key, None)
        else:
            scope[op.key] = (copy.deepcopy(op.value), op.expires_at)

    def _append(self, run_id: str, events: Sequence[NewEvent], ts: float) -> list[Event]:
        record = self.runs[run_id]
        log = self.events.setdefault(run_id, [])
        out = []
        for new in events:
            event = build_event(run_id, record.flow, len(log) + 1, new, ts)
            log.append(event)
            out.append(event)
            if new.type in LIFECYCLE_TYPES:
                self.feed.append((next(self._gid), event))
        return out

    # -- runs and events ---------------------------------------------------------------------
    async def append_events(self, run_id: str, events: Sequence[NewEvent]) -> list[Event]:
        if run_id not in self.runs:
            return []
        out = self._append(run_id, events, now())
        self._notifier.notify()
        return out

    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        log = self.events.get(run_id, [])[after:]
        return list(log if limit is None else log[:limit])

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        out = [(gid, ev) for gid, ev in self.feed if gid > after]
        return out[:limit]

    async def get_run(self, run_id: str) -> RunRecord | None:
        record = self.runs.get(run_id)
        return copy.deepcopy(record) if record is not None else None

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        items: list[RunRecord] = []
        for run_id in reversed(self.run_order):
            if cursor is not None and run_id >= cursor:
                continue
            record = self.runs[run_id]
            if (flow is None or record.flow == flow) and (
                status is None or record.status == status
            ):
                items.append(copy.deepcopy(record))
                if len(items) > limit:
                    break
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].run_id if more else None)

    # -- state ------------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]:
        entry = self.state.get(scope, {}).get(key)
        if entry is None or (entry[1] is not None and entry[1] <= now()):
            return False, None
        return True, copy.deepcopy(entry[0])

    async def state_items(self, scope: str) -> dict[str, Any]:
        ts = now()
        return {
            k: copy.deepcopy(v)
            for k, (v, exp) in self.state.get(scope, {}).items()
            if exp is None or exp > ts
        }

    # -- queues and jobs ----------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            c = counts.setdefault(job.queue, {})
            c[job.state] = c.get(job.state, 0) + 1
        for queue in self.paused:
            counts.setdefault(queue, {})
        return counts

    async def set_paused(self, queue: str, paused: bool) -> None:
        (self.paused.add if paused else self.paused.discard)(queue)
        self._notifier.notify()

    async def paused_queues(self) -> set[str]:
        return set(self.paused)

    async def get_job(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return copy.copy(job) if job is not None else None

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        start = int(cursor) if cursor else 1 << 62
        jobs = sorted(
            (
                (self.job_order[j.id], j)
                for j in self.jobs.values()
                if j.queue == queue and (state is None or j.state == state)
            ),
            key=lambda pair: -pair[0],
        )
        page = [(o, j) for o, j in jobs if o < start][: limit + 1]
        more = len(page) > limit
        page = page[:limit]
        return Page([copy.copy(j) for _, j in page], str(page[-1][0]) if more else None)

    async def delete_job(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None:
            return False
        if job.state == "active":
            raise ValueError("an active job cannot be deleted")
        del self.jobs[job_id]
        if job.key is not None and self.keys.get((job.queue, job.key)) == job_id:
            del self.keys[(job.queue, job.key)]
        return True

    # -- timers --------------------------------------------------------------------------------
    async def claim_timers(self, now_ts: float, limit: int, lease: float) -> list[Timer]:
        due = sorted((t for t in self.timers.values() if t.due <= now_ts), key=lambda t: t.due)
        out = []
        for timer in due[:limit]:
            out.append(copy.copy(timer))
            timer.due = now_ts + lease
        return out

    async def delete_timer(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    async def list_timers(self) -> list[Timer]:
        return [copy.copy(t) for t in sorted(self.timers.values(), key=lambda t: t.due)]

    # -- records -------------------------------------------------------------------------------
    def _live(self, collection: str) -> dict[str, tuple[Any, float | None]]:
        records = self.records.get(collection, {})
        ts = now()
        for key in [k for k, (_, exp) in records.items() if exp is not None and exp <= ts]:
            del records[key]
        return records

    def _put(self, collection: str, key: str, value: Any, expires_at: float | None) -> None:
        if value is None:
            self.records.get(collection, {}).pop(key, None)
        else:
            self.records.setdefault(collection, {})[key] = (copy.deepcopy(value), expires_at)

    async def get_record(self, collection: str, key: str) -> Any:
        found = self._live(collection).get(key)
        return None if found is None else copy.deepcopy(found[0])

    async def list_records(
        self, collection: str, limit: int = 100, after: str | None = None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        keys = sorted(self._live(collection), reverse=reverse)
        if after is not None:
            keys = [k for k in keys if (k < after if reverse else k > after)]
        records = self.records.get(collection, {})
        return [(k, copy.deepcopy(records[k][0])) for k in keys[:limit]]

    async def put_record(
        self,
        collection: str,
        key: str,
        value: Any,
        *,
        expires_at: float | None = None,
        only_new: bool = False,
    ) -> Any:
        if only_new:
            found = self._live(collection).get(key)
            if found is not None:
                return copy.deepcopy(found[0])
        self._put(collection, key, value, expires_at)
        return None

    async def delete_record(self, collection: str, key: str) -> bool:
        return self._live(collection).pop(key, None) is not None

    def _add(self, collection: str, key: str, amount: int, expires_at: float | None) -> int:
        records = self._live(collection)
        value, expiry = records.get(key, (0, expires_at))
        records[key] = (int(value) + amount, expiry)
        self.records[collection] = records
        return int(value) + amount

    async def add_to_counter(
        self, collection: str, key: str, amount: int = 1, expires_at: float | None = None
    ) -> int:
        return self._add(collection, key, amount, expires_at)

    async def record_collections(self) -> list[str]:
        return sorted(c for c in self.records if self._live(c))

    # -- migration -----------------------------------------------------------------------------
    async def export_state(self, scope: str) -> StateItems:
        ts = now()
        return {
            k: (copy.deepcopy(v), exp)
            for k, (v, exp) in self.state.get(scope, {}).items()
            if exp is None or exp > ts
        }

    async def export_records(
        self, collection: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, Any, float | None]]:
        records = self._live(collection)
        keys = sorted(k for k in records if after is None or k > after)
        return [(k, copy.deepcopy(records[k][0]), records[k][1]) for k in keys[:limit]]

    def _import_job(self, job: Job, state: StateItems | None) -> bool:
        if job.id in self.jobs:
            return False
        if job.key is not None and job.state in _UNFINISHED:
            other = self.keys.get((job.queue, job.key))
            if other is not None and other in self.jobs and self.jobs[other].state in _UNFINISHED:
                return False
        job = copy.deepcopy(job)
        self.jobs[job.id] = job
        self.job_order[job.id] = next(self._seq)
        if job.key is not None and job.state in _UNFINISHED:
            self.keys[(job.queue, job.key)] = job.id
        if job.state == "active":
            self.active.add(job.id)
        elif job.state in ("waiting", "delayed"):
            self._schedule(job)
        for key, (value, expires_at) in (state or {}).items():
            self._state_op(StateOp(f"job:{job.id}", key, "set", value, expires_at))
        return True

    async def import_run(self, run: RunImport) -> bool:
        record = run.record
        if record.run_id in self.runs:
            return False
        self.runs[record.run_id] = copy.deepcopy(record)
        bisect.insort(self.run_order, record.run_id)  # list_runs relies on id order
        log = self.events[record.run_id] = []
        for event in run.events:
            stored = copy.deepcopy(exact_event(event))
            log.append(stored)
            if stored["type"] in LIFECYCLE_TYPES:
                self.feed.append((next(self._gid), stored))
        for key, (value, expires_at) in run.state.items():
            self._state_op(StateOp(record.run_id, key, "set", value, expires_at))
        for job in run.jobs:
            self._import_job(job, None)
        for timer in run.timers:
            self.timers[timer.id] = copy.copy(timer)
        for rec in run.records:
            self._put(rec.collection, rec.key, rec.value, rec.expires_at)
        self._notifier.notify()
        return True

    async def import_jobs(
        self, jobs: Sequence[Job], state: Mapping[str, StateItems] | None = None
    ) -> list[str]:
        state = state or {}
        out = [job.id for job in jobs if self._import_job(job, state.get(job.id))]
        self._notifier.notify()
        return out
