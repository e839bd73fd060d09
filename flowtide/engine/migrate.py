"""Copying what one backend holds to another (``flowtide migrate``), and checking the copy.

What is copied, in this order:

1. records that belong to no run (triggers, schedule states, fires, trigger counters,
   idempotency keys...) with their expiry times, and which queues are paused;
2. runs, newest first in pages: each run in one atomic :meth:`Backend.import_run` with its
   events exactly as they are (seq, id, ts, type, step, attempt, data), its state, its step
   jobs, and the timers and records that belong to it (a timer's data or a record's value
   naming its ``run_id``: stall and await deadlines, pending awaits, await tokens, event
   awaits, the emit outbox);
3. standalone jobs (every state) with their state, by :meth:`Backend.import_jobs`;
4. timers that belong to no run (schedule occurrences, ...).

A job leased on the source (``active``) is copied as ``waiting`` with its attempt given back,
as a graceful shutdown gives it back: its worker runs against the old backend.

Idempotent: a run that exists on the target is left alone (and with it its jobs, timers and
records), jobs are inserted only when their id is new, records only when their key is new,
timers only when their id is new. Resumable: a checkpoint record on the target (collection
``migration``, one key per source) holds the newest run of the source when copying began and
the oldest run copied so far, updated after every page; a later run copies the runs newer than
the first and older than the second, and the overlap of an interrupted page is harmless.

:func:`verify` compares counts per kind on both sides and, for every run of the source, the
SHA-256 of its events (canonical JSON), its state and its record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import orjson

from flowtide._util.clock import iso, now
from flowtide.backends.base import (
    Backend,
    CommitItem,
    Job,
    RecordOp,
    RunImport,
    StateItems,
    Timer,
    Transition,
)
from flowtide.events import Event, RunRecord

__all__ = [
    "CHECKPOINTS",
    "MigrationReport",
    "Progress",
    "VerifyReport",
    "checkpoint_key",
    "events_checksum",
    "migrate",
    "safe_url",
    "verify",
]

CHECKPOINTS = "migration"  # the target's collection of checkpoints (never copied itself)
PAGE = 100  # runs per page (a checkpoint after each)
JOB_CHUNK = 200  # jobs per import_jobs call
LIST_PAGE = 500
CONCURRENCY = 8  # runs copied or checked at once
KINDS = ("runs", "events", "state values", "jobs", "timers", "records", "paused queues")


class Progress(Protocol):
    """What the command line shows while copying (a rich progress bar). ``begin`` again for a
    phase sets a new total (more was found) and keeps its progress."""

    def begin(self, phase: str, total: int) -> None: ...

    def advance(self, phase: str, amount: int = 1) -> None: ...


class _Quiet:
    def begin(self, phase: str, total: int) -> None:
        return None

    def advance(self, phase: str, amount: int = 1) -> None:
        return None


@dataclass
class MigrationReport:
    """``copied``: what was written (with ``dry_run``: what would be); ``present``: what the
    target already had, so it was left alone."""

    dry_run: bool
    copied: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    resumed: bool = False  # a checkpoint of an earlier migration from this source was found

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "copied": {k: self.copied[k] for k in KINDS},
            "present": {k: self.present[k] for k in KINDS},
        }


@dataclass
class VerifyReport:
    counts: list[tuple[str, int, int]]  # (kind, on the source, on the target)
    runs_checked: int
    differences: list[dict[str, Any]]  # {"run_id", "problem", "source", "target"}

    @property
    def ok(self) -> bool:
        return not self.differences and all(s == t for _, s, t in self.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": [
                {"kind": k, "source": s, "target": t, "match": s == t} for k, s, t in self.counts
            ],
            "runs_checked": self.runs_checked,
            "differences": self.differences,
        }


def safe_url(url: str) -> str:
    """The URL without its password (for checkpoints and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def checkpoint_key(source_url: str) -> str:
    return "from:" + hashlib.sha256(source_url.encode()).hexdigest()[:32]


def events_checksum(events: Iterable[Event]) -> str:
    """SHA-256 of a run's events as canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(list(events), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _owner(value: Any) -> str | None:
    """The run a timer's data or a record's value belongs to, if it names one."""
    if isinstance(value, dict):
        run_id = value.get("run_id")
        if isinstance(run_id, str) and run_id:
            return run_id
    return None


def _portable(job: Job) -> Job:
    """A job as the target gets it: a leased one is given back (waiting, its attempt not
    counted), as a worker shutting down gives it back; no job keeps a lease."""
    if job.state == "active":
        attempt = max(job.attempt - 1, 0)
        return dataclasses.replace(
            job, state="waiting", attempt=attempt, worker=None, lease_until=None
        )
    return dataclasses.replace(job, worker=None, lease_until=None)


def _constant(transition: Transition) -> Callable[[RunRecord | None], Transition]:
    return lambda _: transition


async def _gather(items: Iterable[Any], fn: Callable[[Any], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Any) -> None:
        async with gate:
            await fn(item)

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # stop the rest: the page is not done, its checkpoint not written
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _run_pages(backend: Backend) -> AsyncIterator[list[RunRecord]]:
    """Every run, a page at a time, newest first (not all in memory at once)."""
    cursor = None
    while True:
        page = await backend.list_runs(limit=LIST_PAGE, cursor=cursor)
        yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _count_runs(backend: Backend, wanted: Callable[[str], bool]) -> int:
    return sum([sum(1 for r in items if wanted(r.run_id)) async for items in _run_pages(backend)])


async def _all_jobs(backend: Backend, queue: str) -> list[Job]:
    """Every job of a queue, oldest first."""
    out: list[Job] = []
    cursor = None
    while True:
        page = await backend.list_jobs(queue, None, LIST_PAGE, cursor)
        out.extend(page.items)
        if page.next_cursor is None:
            return out[::-1]
        cursor = page.next_cursor


async def _all_records(backend: Backend, collection: str) -> list[tuple[str, Any, float | None]]:
    out: list[tuple[str, Any, float | None]] = []
    after = None
    while True:
        page = await backend.export_records(collection, LIST_PAGE, after)
        out.extend(page)
        if len(page) < LIST_PAGE:
            return out
        after = page[-1][0]


@dataclass
class _Inventory:
    """What the source holds besides runs, split into what belongs to a run and the rest."""

    records: list[RecordOp] = field(default_factory=list)
    run_records: dict[str, list[RecordOp]] = field(default_factory=dict)
    timers: list[Timer] = field(default_factory=list)
    run_timers: dict[str, list[Timer]] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)  # standalone, oldest first per queue
    run_jobs: dict[str, list[Job]] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)


async def _inventory(source: Backend) -> _Inventory:
    inv = _Inventory()
    for collection in await source.record_collections():
        if collection == CHECKPOINTS:
            continue
        for key, value, expires_at in await _all_records(source, collection):
            op = RecordOp(collection, key, value, expires_at)
            owner = _owner(value)
            if owner is None:
                inv.records.append(op)
            else:
                inv.run_records.setdefault(owner, []).append(op)
    for timer in await source.list_timers():
        owner = _owner(timer.data)
        if owner is None:
            inv.timers.append(timer)
        else:
            inv.run_timers.setdefault(owner, []).append(timer)
    for queue in sorted(await source.queue_counts()):
        for job in await _all_jobs(source, queue):
            if job.run_id is None:
                inv.jobs.append(job)
            else:
                inv.run_jobs.setdefault(job.run_id, []).append(job)
    inv.paused = await source.paused_queues()
    return inv


class _Migration:
    def __init__(
        self,
        source: Backend,
        target: Backend,
        source_url: str,
        dry_run: bool,
        progress: Progress,
        page: int,
    ) -> None:
        self.source, self.target = source, target
        self.source_url = source_url
        self.dry_run = dry_run
        self.progress = progress
        self.page = page
        self.report = MigrationReport(dry_run)
        self.inv = _Inventory()
        self.key = checkpoint_key(source_url)

    # -- records and paused queues ----------------------------------------------------------
    async def copy_records(self, records: list[RecordOp]) -> None:
        async def one(rec: RecordOp) -> None:
            if self.dry_run:
                new = await self.target.get_record(rec.collection, rec.key) is None
            else:
                kept = await self.target.put_record(
                    rec.collection, rec.key, rec.value, expires_at=rec.expires_at, only_new=True
                )
                new = kept is None
            (self.report.copied if new else self.report.present)["records"] += 1
            self.progress.advance("records")

        await _gather(records, one)

    async def copy_paused(self) -> None:
        have = await self.target.paused_queues()
        for queue in sorted(self.inv.paused):
            if queue in have:
                self.report.present["paused queues"] += 1
                continue
            if not self.dry_run:
                await self.target.set_paused(queue, True)
            self.report.copied["paused queues"] += 1

    # -- runs -------------------------------------------------------------------------------
    async def copy_run(self, record: RunRecord) -> None:
        rid = record.run_id
        jobs = [_portable(j) for j in self.inv.run_jobs.pop(rid, [])]
        timers = self.inv.run_timers.pop(rid, [])
        records = self.inv.run_records.pop(rid, [])
        events: list[Event] = []
        state: StateItems = {}
        if self.dry_run and await self.target.get_run(rid) is not None:
            new = False
        else:
            events = await self.source.read_events(rid)
            state = await self.source.export_state(rid)
            if self.dry_run:
                new = True
            else:
                run = RunImport(record, events, state, jobs, timers, records)
                new = await self.target.import_run(run)
        if new:
            copied = self.report.copied
            copied["runs"] += 1
            copied["events"] += len(events)
            copied["state values"] += len(state)
            copied["jobs"] += len(jobs)
            copied["timers"] += len(timers)
            copied["records"] += len(records)
        else:
            self.report.present["runs"] += 1
        self.progress.advance("runs")

    async def save(self, top: str | None, last: str | None, done: bool) -> None:
        if self.dry_run:
            return
        doc = {
            "source": safe_url(self.source_url),
            "top": top,
            "last": last,
            "done": done,
            "updated_at": iso(now()),
        }
        await self.target.put_record(CHECKPOINTS, self.key, doc)

    async def copy_runs(self) -> None:
        """Newest first, a page at a time, resuming from the checkpoint (see the module)."""
        checkpoint = await self.target.get_record(CHECKPOINTS, self.key)
        self.report.resumed = checkpoint is not None
        if checkpoint is None:
            top, last, done = None, None, False
        else:
            top, last, done = checkpoint.get("top"), checkpoint.get("last"), checkpoint["done"]

        def wanted(run_id: str) -> bool:
            if checkpoint is None:
                return True
            if top is None or run_id > top:
                return True  # started on the source after the checkpoint's first page
            return not done and (last is None or run_id < last)

        self.progress.begin("runs", await _count_runs(self.source, wanted))
        if checkpoint is not None:  # the runs the source got since
            newest, cursor = None, None
            while True:
                page = await self.source.list_runs(limit=self.page, cursor=cursor)
                fresh = [r for r in page.items if top is None or r.run_id > top]
                newest = newest or (fresh[0].run_id if fresh else None)
                await _gather(fresh, self.copy_run)
                if len(fresh) < len(page.items) or page.next_cursor is None:
                    break
                cursor = page.next_cursor
            if newest is not None:
                top = newest
                await self.save(top, last, done)
        cursor = last
        while not done:
            page = await self.source.list_runs(limit=self.page, cursor=cursor)
            if top is None and page.items:
                top = page.items[0].run_id
            await _gather(page.items, self.copy_run)
            if page.items:
                last = page.items[-1].run_id
            done = page.next_cursor is None
            await self.save(top, last, done)
            cursor = page.next_cursor

    async def adopt_leftovers(self) -> None:
        """Jobs, timers and records of runs the run pass did not copy now: dropped when the
        run is on the source (it was copied earlier, with them); copied on their own when it
        is not (what the source kept of a run it no longer has)."""
        leftover = set(self.inv.run_jobs) | set(self.inv.run_timers) | set(self.inv.run_records)
        for rid in sorted(leftover):
            jobs = self.inv.run_jobs.pop(rid, [])
            timers = self.inv.run_timers.pop(rid, [])
            records = self.inv.run_records.pop(rid, [])
            if await self.source.get_run(rid) is not None:
                continue
            self.inv.jobs.extend(jobs)
            self.inv.timers.extend(timers)
            self.inv.records.extend(records)

    # -- jobs and timers --------------------------------------------------------------------
    async def copy_jobs(self) -> None:
        jobs = [_portable(j) for j in self.inv.jobs]
        self.progress.begin("jobs", len(jobs))
        for start in range(0, len(jobs), JOB_CHUNK):
            chunk = jobs[start : start + JOB_CHUNK]
            if self.dry_run:
                found = await asyncio.gather(*(self.target.get_job(j.id) for j in chunk))
                fresh = [j for j, f in zip(chunk, found, strict=True) if f is None]
                new = len(fresh)
                values = await asyncio.gather(
                    *(self.source.export_state(f"job:{j.id}") for j in fresh if j.run_id is None)
                )
                self.report.copied["state values"] += sum(len(v) for v in values)
            else:
                state: dict[str, StateItems] = {}
                scoped = [j for j in chunk if j.run_id is None]
                values = await asyncio.gather(
                    *(self.source.export_state(f"job:{j.id}") for j in scoped)
                )
                for job, items in zip(scoped, values, strict=True):
                    if items:
                        state[job.id] = items
                inserted = await self.target.import_jobs(chunk, state)
                new = len(inserted)
                self.report.copied["state values"] += sum(
                    len(state[i]) for i in inserted if i in state
                )
            self.report.copied["jobs"] += new
            self.report.present["jobs"] += len(chunk) - new
            self.progress.advance("jobs", len(chunk))

    async def copy_timers(self) -> None:
        have = {t.id for t in await self.target.list_timers()}
        missing = [t for t in self.inv.timers if t.id not in have]
        self.report.present["timers"] += len(self.inv.timers) - len(missing)
        self.progress.begin("timers", len(missing))
        for start in range(0, len(missing), JOB_CHUNK):
            chunk = missing[start : start + JOB_CHUNK]
            if not self.dry_run:
                transition = Transition(timers=list(chunk))
                await self.target.commit([CommitItem(None, _constant(transition))])
            self.report.copied["timers"] += len(chunk)
            self.progress.advance("timers", len(chunk))

    async def run(self) -> MigrationReport:
        self.inv = await _inventory(self.source)
        self.progress.begin("records", len(self.inv.records))
        await self.copy_records(self.inv.records)
        await self.copy_paused()
        await self.copy_runs()
        shared = len(self.inv.records)
        await self.adopt_leftovers()
        self.progress.begin("records", len(self.inv.records))  # and those of runs gone
        await self.copy_records(self.inv.records[shared:])
        await self.copy_jobs()
        await self.copy_timers()
        return self.report


async def migrate(
    source: Backend,
    target: Backend,
    *,
    source_url: str,
    dry_run: bool = False,
    progress: Progress | None = None,
    page: int = PAGE,
) -> MigrationReport:
    """Copy everything ``source`` holds to ``target`` (both open); see the module."""
    return await _Migration(source, target, source_url, dry_run, progress or _Quiet(), page).run()


# -- verification ----------------------------------------------------------------------------
async def _side_counts(backend: Backend, fold_active: bool) -> Counter[str]:
    """Counts of everything but runs (and their events and state)."""
    counts: Counter[str] = Counter()
    for states in (await backend.queue_counts()).values():
        for state, n in states.items():
            if fold_active and state == "active":
                state = "waiting"  # migration gives leased jobs back
            counts[f"jobs {state}"] += n
    counts["timers"] = len(await backend.list_timers())
    for collection in await backend.record_collections():
        if collection != CHECKPOINTS:
            counts[f"records {collection}"] = len(await _all_records(backend, collection))
    counts["paused queues"] = len(await backend.paused_queues())
    return counts


def _count_run(counts: Counter[str], record: RunRecord) -> None:
    counts["runs"] += 1
    counts[f"runs {record.status}"] += 1


async def verify(
    source: Backend, target: Backend, *, progress: Progress | None = None
) -> VerifyReport:
    """Compare counts per kind, and every source run's events (checksum), state and record
    with the target's. ``events`` and ``state values`` count those of the source's runs."""
    progress = progress or _Quiet()
    have = await _side_counts(source, fold_active=True)
    got = await _side_counts(target, fold_active=False)
    async for items in _run_pages(target):
        for record in items:
            _count_run(got, record)
    differences: list[dict[str, Any]] = []
    progress.begin("verify", await _count_runs(source, lambda _: True))

    async def check(record: RunRecord) -> None:
        rid = record.run_id
        _count_run(have, record)
        theirs = await target.get_run(rid)
        mine_events, their_events = await asyncio.gather(
            source.read_events(rid), target.read_events(rid)
        )
        mine_state, their_state = await asyncio.gather(
            source.state_items(rid), target.state_items(rid)
        )
        have["events"] += len(mine_events)
        got["events"] += len(their_events)
        have["state values"] += len(mine_state)
        got["state values"] += len(their_state)
        mine_sum, their_sum = events_checksum(mine_events), events_checksum(their_events)
        problem = None
        if theirs is None:
            problem = "missing on the target"
        elif mine_sum != their_sum:
            problem = "events differ"
        elif mine_state != their_state:
            problem = "state differs"
        elif theirs != record:
            problem = "run record differs"
        if problem is not None:
            differences.append(
                {"run_id": rid, "problem": problem, "source": mine_sum, "target": their_sum}
            )
        progress.advance("verify")

    async for items in _run_pages(source):
        await _gather(items, check)
    differences.sort(key=lambda d: str(d["run_id"]))
    kinds = sorted(set(have) | set(got), key=_kind_order)
    counts = [(kind, have[kind], got[kind]) for kind in kinds]
    return VerifyReport(counts, have["runs"], differences)


def _kind_order(kind: str) -> tuple[int, str]:
    head = kind.split(" ", 1)[0]
    order = ["runs", "events", "state", "jobs", "timers", "records", "paused"]
    return (order.index(head) if head in order else len(order), kind)
