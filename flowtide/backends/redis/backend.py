"""Redis backend (``redis://HOST:PORT/DB?prefix=flowtide:``): many processes on many machines.

Every state change that DESIGN A10 needs atomic is one Lua script (``lua/*.lua``): claim
(with moving due delayed jobs and reclaiming expired leases), heartbeat, release, commit,
timer claims. A commit loads the run records, calls the pure ``decide`` functions here in
Python, then applies the transitions with one script that first checks the records'
versions and the ``attempt_of`` guards; on a conflict it loads and decides again. A claim
returns each step job's run record too, and a commit remembers the records it wrote: the commit
of a claimed job decides on that record without loading it (one round trip instead of two),
the version check making a stale one a conflict like any other. Concurrent ``commit`` and
``enqueue`` calls are coalesced into shared script calls, each call staying atomic
(``_coalesce.py``).

This module holds the write paths; the class is built on ``RedisConnection``
(``_connection.py``: the client, retries with backoff while the connection is lost, and the
pub/sub wake-ups every change publishes) and ``RedisReads`` (``_reads.py``: the queries).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from flowtide._util.clock import now
from flowtide._util.jsonutil import dumps, loads
from flowtide.backends._common import LEASE_LOST, exact_event
from flowtide.backends.base import (
    BackendUnavailable,
    CommitItem,
    Job,
    RunImport,
    StateItems,
    StateOp,
    Timer,
    Transition,
)
from flowtide.backends.redis import _codec as codec
from flowtide.backends.redis._coalesce import (
    ClaimRequest,
    CommitCoalescer,
    Committed,
    EnqueueCoalescer,
)
from flowtide.backends.redis._reads import RedisReads
from flowtide.events import LIFECYCLE_TYPES, Event, NewEvent, RunRecord

__all__ = ["RedisBackend"]

logger = logging.getLogger("flowtide.backends.redis")
MAX_CONFLICTS = 1000
RECORDS_KEPT = 10_000  # run records remembered from claims and commits ...
RECORDS_BYTES = 32 << 20  # ... and their size at most
SWEEP_EVERY = 5.0


class RedisBackend(RedisReads):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._next_sweep = 0.0
        self.conflicts = 0  # optimistic-concurrency retries (a statistic)
        self._enqueues = EnqueueCoalescer(self._enqueue_jobs, self._changed)
        self._commits = CommitCoalescer(self._commit_items)
        # Run records as of this process's latest claim or commit of the run: run id ->
        # (version, encoded record). Only a hint (the commit script checks the version).
        self._records: dict[str, tuple[int, str | bytes]] = {}
        self._records_size = 0

    async def close(self) -> None:
        for task in (self._enqueues.task, self._commits.task):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        self._enqueues.task = self._commits.task = None
        await super().close()

    # -- enqueue, claim, leases -------------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        """Concurrent calls are coalesced (like the worker's group commit): calls made while
        an enqueue script is in flight go out together in the next script call. Each call
        stays atomic (one script applies all of them); a lone call is sent at once."""
        if not jobs:
            return []
        return await self._enqueues.submit(jobs)

    async def _enqueue_jobs(self, jobs: list[Job]) -> list[str]:
        """One enqueue script call for the jobs of a batch of coalesced calls."""
        ts = now()
        args: list[Any] = []
        for job in jobs:
            args += codec.job_args(job, ts)
        ids: list[str] = await self._script("enqueue", args, ts)
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
        await self._maybe_sweep()
        ts = now()
        args, until = self._claim_args((worker, queues, limit, lease, exclude), ts)
        rows = await self._script("claim", args, ts)
        return self._claimed(rows, worker, until)

    @staticmethod
    def _claim_args(claim: ClaimRequest, ts: float) -> tuple[list[Any], float]:
        worker, queues, limit, lease, exclude = claim
        until = ts + lease
        args: list[Any] = [worker, repr(until), limit, dumps(codec.iso_ts(ts)), dumps(LEASE_LOST)]
        args += [-1] if queues is None else [len(queues), *queues]
        args += [len(exclude), *exclude]
        return args, until

    def _claimed(self, rows: Sequence[Any], worker: str, until: float) -> list[Job]:
        for row in rows:
            if len(row) > 13 and row[13] is not None:
                self._remember(row[3], int(row[12]), row[13])
        return [codec.decode_claimed(row, worker, until) for row in rows]

    async def heartbeat(self, worker: str, job_ids: Sequence[str], lease: float) -> list[str]:
        if not job_ids:
            return []
        held: list[str] = await self._script("heartbeat", [worker, repr(now() + lease), *job_ids])
        return held

    async def release(self, worker: str, job_ids: Sequence[str]) -> None:
        if job_ids:
            await self._script("release", [worker, *job_ids])
        self._changed()

    # -- commit -----------------------------------------------------------------------------------
    async def commit(self, items: Sequence[CommitItem]) -> list[list[Event]]:
        """Calls made while a commit script is in flight go out together in the next script
        call (each call's items stay atomic with each other: one script applies them all); a
        lone call is sent at once. A failing call never fails the calls coalesced with it."""
        if not items:
            return []
        events, _ = await self._commits.submit(items, None)
        return events

    async def commit_and_claim(
        self,
        items: Sequence[CommitItem],
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> tuple[list[list[Event]], list[Job]]:
        """``commit``, then ``claim`` in the same script call (an optional capability the
        worker's group commit uses to fill the slots its commit frees, one round trip instead
        of two). The claim is made only if the commit applied."""
        if limit <= 0 or (queues is not None and not queues):
            return await self.commit(items), []
        await self._maybe_sweep()
        return await self._commits.submit(items, (worker, queues, limit, lease, exclude))

    def _remember(self, run_id: str, version: int, text: str | bytes) -> None:
        have = self._records.get(run_id)
        if have is not None:
            if have[0] > version:
                return
            self._records_size -= len(have[1])
            del self._records[run_id]
        self._records[run_id] = (version, text)
        self._records_size += len(text)
        while len(self._records) > RECORDS_KEPT or self._records_size > RECORDS_BYTES:
            self._forget(next(iter(self._records)))  # the least recently remembered

    def _forget(self, run_id: str) -> None:
        have = self._records.pop(run_id, None)
        if have is not None:
            self._records_size -= len(have[1])

    def cached_run(self, run_id: str) -> RunRecord | None:
        """The run's record as of this process's latest claim or commit of it, without a round
        trip; None when not remembered. What never changes in a run (flow, input, trigger) is
        current; the rest may be stale. The worker reads a claimed entry step's trigger here."""
        have = self._records.get(run_id)
        return codec.decode_record(have[1]) if have is not None else None

    async def _load(
        self, items: Sequence[CommitItem], cached: bool
    ) -> tuple[dict[str, tuple[str, str | bytes | None]], dict[str, tuple[str | None, str | None]]]:
        """The run records (run id -> (version, record text)) and the guarded jobs' (state,
        attempt). With ``cached``, remembered records are used and, when every record is
        remembered, nothing is loaded: guarded jobs are then assumed current (the script
        checks them; a conflict loads them)."""
        run_ids = list(dict.fromkeys(i.run_id for i in items if i.run_id is not None))
        records: dict[str, tuple[str, str | bytes | None]] = {}
        missing = run_ids
        if cached:
            missing = []
            fresh = {i.run_id for i in items if i.new_run}
            for run_id in run_ids:
                have = self._records.get(run_id)
                if have is not None:
                    records[run_id] = (str(have[0]), have[1])
                elif run_id in fresh:
                    records[run_id] = ("", None)  # assumed absent: the script checks it
                else:
                    missing.append(run_id)
            if not missing:
                return records, {}
        guards = list(dict.fromkeys(i.attempt_of[0] for i in items if i.attempt_of is not None))
        if not missing and not guards:
            return records, {}

        async def load() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for run_id in missing:
                pipe.hmget(self.keys.run(run_id), ["v", "rec"])
            for job_id in guards:
                pipe.hmget(self.keys.job(job_id), ["state", "attempt"])
            return await pipe.execute()

        res = await self._call(load)
        for run_id, (version, text) in zip(missing, res[: len(missing)], strict=True):
            records[run_id] = ("", None) if text is None else (version, text)
        jobs = {j: (r[0], r[1]) for j, r in zip(guards, res[len(missing) :], strict=True)}
        return records, jobs

    async def _commit_items(
        self, items: Sequence[CommitItem], claim: ClaimRequest | None
    ) -> Committed:
        for attempt in range(MAX_CONFLICTS):
            ts = now()
            ts_iso = codec.iso_ts(ts)
            stored, jobs = await self._load(items, cached=attempt == 0)
            checks: list[Any] = []
            for run_id, (version, _) in stored.items():
                checks += ["V", run_id, version]
            pending: dict[str, RunRecord | None] = {}
            written: dict[str, tuple[int, bytes]] = {}
            ended: set[str] = set()
            ops: list[Any] = []
            plan: list[tuple[str | None, str, int, list[NewEvent]]] = []
            for item in items:
                if item.attempt_of is not None:
                    job_id, want = item.attempt_of
                    have = jobs.get(job_id)  # None: not loaded, assumed current
                    if have is not None and (have[0] != "active" or have[1] != str(want)):
                        plan.append((None, "", 0, []))
                        continue
                    checks += ["G", job_id, str(want)]
                record = self._record_for(item.run_id, stored, pending)
                t = item.decide(record)
                if t.run is not None:
                    # a later item of the same run decides on a copy (_record_for)
                    pending[t.run.run_id] = t.run
                    if t.run.terminal:
                        ended.add(t.run.run_id)
                rid = t.run.run_id if t.run is not None else item.run_id
                flow = t.run.flow if t.run is not None else (record.flow if record else "")
                n = codec.transition_ops(item.run_id, t, ts, ts_iso, ops, written)
                plan.append((rid, flow, n, t.events))
            if not ops:
                claimed = [] if claim is None else await self.claim(*claim)
                return [[] for _ in items], claimed
            rows: list[Any] = []
            if claim is None:
                result = await self._script("commit", [len(checks) // 3, *checks, *ops], ts)
            else:
                cargs, until = self._claim_args(claim, ts)
                k = 8 + len(checks) + len(ops)  # the index (ARGV) of the claim's arguments
                args = [k, len(checks) // 3, *checks, *ops, *cargs]
                result, rows = await self._script("commit_claim", args, ts)
            if result[0] == 0:
                self.conflicts += 1
                for run_id in stored:
                    self._forget(run_id)
                if attempt > 3:
                    await asyncio.sleep(random.random() * min(0.001 * attempt, 0.05))
                continue
            for run_id, (new_version, encoded) in written.items():
                if run_id in ended:
                    self._forget(run_id)
                else:
                    self._remember(run_id, new_version, encoded)
            self._changed()
            claimed = [] if claim is None else self._claimed(rows, claim[0], until)
            return self._events_of(plan, result[1:], ts_iso), claimed
        raise RuntimeError(f"commit gave up after {MAX_CONFLICTS} version conflicts")

    @staticmethod
    def _record_for(
        run_id: str | None,
        stored: dict[str, tuple[str, str | bytes | None]],
        pending: dict[str, RunRecord | None],
    ) -> RunRecord | None:
        if run_id is None:
            return None
        if run_id in pending:
            return copy.deepcopy(pending[run_id])
        text = stored[run_id][1] if run_id in stored else None
        return codec.decode_record(text) if text is not None else None

    @staticmethod
    def _events_of(
        plan: Sequence[tuple[str | None, str, int, list[NewEvent]]],
        seqs: Sequence[int],
        ts_iso: str | None,
    ) -> list[list[Event]]:
        out: list[list[Event]] = []
        pos = 0
        for run_id, flow, n, events in plan:
            mine = seqs[pos : pos + n]
            pos += n
            if run_id is None or not n:
                out.append([])
                continue
            out.append(
                [
                    codec.build(run_id, flow, int(seq), new, ts_iso)
                    for seq, new in zip(mine, events, strict=True)
                    if int(seq) > 0
                ]
            )
        return out

    # -- runs and events --------------------------------------------------------------------------
    async def append_events(self, run_id: str, events: Sequence[NewEvent]) -> list[Event]:
        if not events:
            return []
        ts = now()
        ts_iso = codec.iso_ts(ts)
        args: list[Any] = [run_id]
        for new in events:
            args += [codec.lifecycle_flag(new), codec.event_suffix(run_id, new, ts_iso)]
        res = await self._script("append", args, ts)
        if not res:
            return []
        flow = loads(res[0])
        self._changed()
        return [
            codec.build(run_id, flow, int(seq), new, ts_iso)
            for seq, new in zip(res[1:], events, strict=True)
        ]

    # -- queues and jobs --------------------------------------------------------------------------
    async def set_paused(self, queue: str, paused: bool) -> None:
        async def write() -> None:
            pipe = self.client.pipeline(transaction=True)
            if paused:
                pipe.sadd(self.keys.paused, queue)
            else:
                pipe.srem(self.keys.paused, queue)
            pipe.publish(self.keys.wake, "1")
            await pipe.execute()

        await self._call(write)
        self._changed()

    async def delete_job(self, job_id: str) -> bool:
        res = await self._script("delete_job", [job_id])
        if res == -1:
            raise ValueError("an active job cannot be deleted")
        return bool(res == 1)

    # -- timers -----------------------------------------------------------------------------------
    async def claim_timers(self, now_ts: float, limit: int, lease: float) -> list[Timer]:
        res = await self._script("claim_timers", [repr(now_ts), limit, repr(now_ts + lease)])
        out = []
        for timer_id, data in zip(res[::2], res[1::2], strict=True):
            kind, payload = loads(data)
            out.append(Timer(timer_id, now_ts + lease, kind, payload))
        return out

    async def delete_timer(self, timer_id: str) -> None:
        transition = Transition(cancel_timers=[timer_id])
        await self.commit([CommitItem(None, lambda _: transition)])

    # -- records ----------------------------------------------------------------------------------
    async def put_record(
        self,
        collection: str,
        key: str,
        value: Any,
        *,
        expires_at: float | None = None,
        only_new: bool = False,
    ) -> Any:
        args = ["put", collection, *codec.record_args(key, value, expires_at)]
        text = await self._script("records", [*args, "1" if only_new else "0"])
        return None if text is None else loads(text)

    async def delete_record(self, collection: str, key: str) -> bool:
        return bool(await self._script("records", ["del", collection, key]))

    async def add_to_counter(
        self, collection: str, key: str, amount: int = 1, expires_at: float | None = None
    ) -> int:
        expires = "" if expires_at is None else repr(float(expires_at))
        args = ["add", collection, key, str(int(amount)), expires]
        return int(await self._script("records", args))

    # -- migration --------------------------------------------------------------------------------
    async def import_run(self, run: RunImport) -> bool:
        r = run.record
        events = [exact_event(e) for e in run.events]
        last_seq = max((int(e["seq"]) for e in events), default=0)
        args: list[Any] = [r.run_id, str(last_seq), str(len(events))]
        for event in events:
            args += ["1" if event["type"] in LIFECYCLE_TYPES else "0", codec.import_event(event)]
        args.append(str(len(run.jobs)))
        for job in run.jobs:
            args += codec.import_job_args(job)
        rest = Transition(
            run=r,
            state=[StateOp(r.run_id, k, "set", v, exp) for k, (v, exp) in run.state.items()],
            timers=list(run.timers),
            records=list(run.records),
        )
        ts = now()
        ops: list[Any] = ["0"]  # commit_ops: no checks
        codec.transition_ops(r.run_id, rest, ts, codec.iso_ts(ts), ops)
        done = await self._script("import_run", [*args, *ops], ts)
        self._changed()
        return bool(done)

    async def import_jobs(
        self, jobs: Sequence[Job], state: Mapping[str, StateItems] | None = None
    ) -> list[str]:
        if not jobs:
            return []
        args: list[Any] = []
        for job in jobs:
            args += codec.import_job_args(job, (state or {}).get(job.id))
        ids: list[str] = await self._script("import_jobs", args)
        self._changed()
        return ids

    # -- retention --------------------------------------------------------------------------------
    async def _maybe_sweep(self) -> None:
        """Age-based retention and the removal of expired records no operation meets, at
        most every few seconds, by one process at a time."""
        t = time.monotonic()
        if t < self._next_sweep:
            return
        self._next_sweep = t + SWEEP_EVERY
        o = self.options
        ts = now()
        cutoffs = [
            "" if age is None else repr(ts - age)
            for age in (o.completed_ttl, o.failed_ttl, o.run_ttl)
        ]
        try:
            got = await self.client.set(self.keys.sweep, "1", nx=True, ex=int(SWEEP_EVERY))
            if got:
                await self._script("sweep", cutoffs, ts)
        except (RedisError, OSError, BackendUnavailable) as exc:
            logger.debug("retention sweep skipped: %s", exc)
