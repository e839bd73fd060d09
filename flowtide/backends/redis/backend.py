"""Redis backend (``redis://HOST:PORT/DB?prefix=flowtide:``): many processes on many machines.

Every state change that DESIGN A10 needs atomic is one Lua script (``lua/*.lua``): claim
(with moving due delayed jobs and reclaiming expired leases), heartbeat, release, commit,
timer claims. A commit loads the run records, calls the pure ``decide`` functions here in
Python, then applies the transitions with one script that first checks the records'
versions and the ``attempt_of`` guards; on a conflict it loads and decides again. A claim
returns each step job's run record too, and a commit remembers the records it wrote: the commit
of a claimed job decides on that record without loading it (one round trip instead of two),
the version check making a stale one a conflict like any other. Concurrent ``commit`` and
``enqueue`` calls are coalesced into shared script calls, each call staying atomic.

Waiters block on a pub/sub subscription to ``{prefix}wake``, which every change publishes to,
so a worker in any process wakes at once. A lost connection is retried with backoff (logged
once per outage) for ``retry_for`` seconds before an operation raises BackendUnavailable.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from flowtide._util.clock import now
from flowtide._util.jsonutil import dumps, loads
from flowtide.backends._common import LEASE_LOST, Notifier
from flowtide.backends.base import BackendUnavailable, CommitItem, Job, Page, Timer, Transition
from flowtide.backends.redis import _codec as codec
from flowtide.backends.redis._config import RedisOptions, parse_url
from flowtide.backends.redis._scripts import load_scripts
from flowtide.backends.redis.keys import Keys
from flowtide.events import Event, NewEvent, RunRecord

__all__ = ["RedisBackend"]

logger = logging.getLogger("flowtide.backends.redis")
T = TypeVar("T")
# claim arguments: worker, queues, limit, lease, exclude
ClaimRequest = tuple[str, Collection[str] | None, int, float, Collection[str]]
Committed = tuple[list[list[Event]], list[Job]]
_Call = tuple[list[CommitItem], "asyncio.Future[Committed]", ClaimRequest | None]
_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
MAX_CONFLICTS = 1000
ENQUEUE_BATCH = 5000  # jobs per coalesced enqueue script call
COMMIT_BATCH = 500  # items per coalesced commit script call
RECORDS_KEPT = 10_000  # run records remembered from claims and commits ...
RECORDS_BYTES = 32 << 20  # ... and their size at most
SWEEP_EVERY = 5.0
QUIET_AFTER_OUTAGE = 30.0  # connection losses this soon after one are the same outage


class RedisBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.options: RedisOptions = parse_url(url)
        self.keys = Keys(self.options.prefix)
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._notifier = Notifier()
        self._generation = 0  # wake-ups received (from any process)
        self._waited_generation = 0
        self._listener: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._quiet_until = 0.0
        self._logged = False
        self._next_sweep = 0.0
        self.conflicts = 0  # optimistic-concurrency retries (a statistic)
        self._enq: list[tuple[list[Job], asyncio.Future[list[str]]]] = []
        self._enq_busy = False
        self._enq_task: asyncio.Task[None] | None = None
        self._com: list[_Call] = []
        self._com_busy = False
        self._com_task: asyncio.Task[None] | None = None
        # Run records as of this process's latest claim or commit of the run: run id ->
        # (version, encoded record). Only a hint (the commit script checks the version).
        self._records: dict[str, tuple[int, str | bytes]] = {}
        self._records_size = 0
        o = self.options
        self._common = [o.prefix, "", str(o.feed_max), str(o.keep_completed), str(o.keep_failed)]

    # -- connection -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        # A blocking pool: a burst of concurrent calls waits for a free connection instead
        # of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            self.options.redis_url,
            max_connections=self.options.max_connections,
            timeout=None,
            decode_responses=True,
            socket_connect_timeout=self.options.connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 1),
        )
        pool.connection_class = _hiredis_packing(pool.connection_class)
        client = aioredis.Redis.from_pool(pool)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            where = self.options.redis_url
            reason = str(exc).replace("\n", " ")
            raise BackendUnavailable(f"cannot reach Redis at {where}: {reason}") from None
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in load_scripts().items()}
        await self._start_listener()

    async def _start_listener(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self._subscribe(pubsub)
        self._listener = asyncio.create_task(self._listen(pubsub), name="flowtide-redis-wake")

    async def close(self) -> None:
        for task in (self._enq_task, self._com_task):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        self._enq_task = self._com_task = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"Redis does not answer: {exc}") from None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendUnavailable("the Redis backend is not open")
        return self._client

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation; while the connection is lost, retry with backoff for
        ``retry_for`` seconds, then raise BackendUnavailable."""
        delay = 0.05
        deadline: float | None = None
        while True:
            try:
                result = await fn()
            except _DOWN as exc:
                if self._client is None:
                    raise BackendUnavailable("the Redis backend is closed") from None
                t = time.monotonic()
                self._lost(exc, t)
                deadline = deadline or t + self.options.retry_for
                if t >= deadline:
                    raise BackendUnavailable(f"Redis unreachable: {exc}") from None
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                continue
            except RedisError as exc:
                if "NOSCRIPT" in str(exc) or "LOADING" in str(exc):
                    await asyncio.sleep(delay)
                    continue
                raise
            if self._down_since is not None:
                self._back()
            return result

    def _lost(self, exc: BaseException, t: float) -> None:
        """An outage is logged once: losses soon after the last one (stale pooled
        connections failing one by one after a restart) belong to the same incident."""
        if self._down_since is not None:
            return
        self._down_since = t
        if t >= self._quiet_until:
            self._logged = True
            logger.warning("lost the connection to Redis (%s); reconnecting with backoff", exc)

    def _back(self) -> None:
        t = time.monotonic()
        if self._logged and self._down_since is not None:
            logger.warning("reconnected to Redis after %.1fs", t - self._down_since)
        self._logged = False
        self._down_since = None
        self._quiet_until = t + QUIET_AFTER_OUTAGE

    async def _script(self, name: str, args: Sequence[Any], ts: float | None = None) -> Any:
        common = list(self._common)
        common[1] = repr(now() if ts is None else ts)
        script = self._scripts[name]
        argv = [*common, *args]
        return await self._call(lambda: script(keys=[], args=argv))

    # -- wake-ups ---------------------------------------------------------------------------------
    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(self.keys.wake)
        # wait for the confirmation, so that a change published after open() is seen
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn = pubsub.connection
            if conn is not None and pubsub.subscribed:
                msg = await pubsub.parse_response(block=False, timeout=0.05)
                if msg is not None and msg[0] == "subscribe":
                    return
            else:
                await asyncio.sleep(0.01)

    async def _listen(self, pubsub: PubSub) -> None:
        delay = 0.05
        while True:
            try:
                async for _ in pubsub.listen():
                    delay = 0.05
                    self._changed()
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError):
                pass
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            self._changed()  # changes may have been missed: let waiters look
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            if self._client is None:
                return
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.wake)
            except (RedisError, OSError):
                continue

    def _changed(self) -> None:
        self._generation += 1
        self._notifier.notify()

    async def wait_for_change(self, timeout: float) -> None:
        """A change seen since the previous call returns at once: a wake-up that arrives
        between a caller's check (say an empty claim) and its wait is not lost."""
        if self._generation != self._waited_generation:
            self._waited_generation = self._generation
            return
        await self._notifier.wait(timeout)
        self._waited_generation = self._generation

    # -- enqueue, claim, leases -------------------------------------------------------------------
    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        """Concurrent calls are coalesced (like the worker's group commit): calls made while
        an enqueue script is in flight go out together in the next script call. Each call
        stays atomic (one script applies all of them); a lone call is sent at once."""
        if not jobs:
            return []
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._enq.append((list(jobs), fut))
        if not self._enq_busy:
            self._enq_busy = True
            await self._enqueue_batches(once=True)
        return await fut

    async def _enqueue_batches(self, once: bool) -> None:
        try:
            while self._enq:
                batch: list[tuple[list[Job], asyncio.Future[list[str]]]] = []
                size = 0
                while self._enq and (not batch or size + len(self._enq[0][0]) <= ENQUEUE_BATCH):
                    item = self._enq.pop(0)
                    batch.append(item)
                    size += len(item[0])
                await self._enqueue_batch(batch)
                if once:
                    break
        finally:
            if self._enq:
                self._enq_task = asyncio.create_task(self._enqueue_batches(False))
            else:
                self._enq_busy = False

    async def _enqueue_batch(
        self, batch: list[tuple[list[Job], asyncio.Future[list[str]]]]
    ) -> None:
        try:
            ts = now()
            args: list[Any] = []
            for jobs, _ in batch:
                for job in jobs:
                    args += codec.job_args(job, ts)
            ids: list[str] = await self._script("enqueue", args, ts)
        except Exception as exc:
            if len(batch) > 1:  # one bad call must not fail the calls coalesced with it
                for one in batch:
                    await self._enqueue_batch([one])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        except BaseException:
            for _, fut in batch:
                if not fut.done():
                    fut.cancel()
            raise
        self._changed()
        pos = 0
        for jobs, fut in batch:
            if not fut.done():
                fut.set_result(ids[pos : pos + len(jobs)])
            pos += len(jobs)

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
        events, _ = await self._submit(items, None)
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
        return await self._submit(items, (worker, queues, limit, lease, exclude))

    async def _submit(self, items: Sequence[CommitItem], claim: ClaimRequest | None) -> Committed:
        fut: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._com.append((list(items), fut, claim))
        if not self._com_busy:
            self._com_busy = True
            await self._commit_batches(once=True)
        return await fut

    async def _commit_batches(self, once: bool) -> None:
        try:
            while self._com:
                batch: list[_Call] = []
                size = 0
                claims = 0  # a batch makes one claim at most
                while self._com and (
                    not batch
                    or (
                        size + len(self._com[0][0]) <= COMMIT_BATCH
                        and not (claims and self._com[0][2] is not None)
                    )
                ):
                    call = self._com.pop(0)
                    batch.append(call)
                    size += len(call[0])
                    claims += call[2] is not None
                await self._commit_batch(batch)
                if once:
                    break
        finally:
            if self._com:
                self._com_task = asyncio.create_task(self._commit_batches(False))
            else:
                self._com_busy = False

    async def _commit_batch(self, batch: list[_Call]) -> None:
        claim = next((c for _, _, c in batch if c is not None), None)
        try:
            results, jobs = await self._commit_items(
                [item for items, _, _ in batch for item in items], claim
            )
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, BackendUnavailable):
                for one in batch:  # a decide that raises fails its own call only
                    await self._commit_batch([one])
                return
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException:
            for _, fut, _ in batch:
                if not fut.done():
                    fut.cancel()
            raise
        pos = 0
        for items, fut, c in batch:
            # jobs claimed for a caller that is gone are not lost: their leases expire
            if not fut.done():
                fut.set_result((results[pos : pos + len(items)], jobs if c is not None else []))
            pos += len(items)

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
            for run_id in run_ids:
                have = self._records.get(run_id)
                if have is None:
                    missing.append(run_id)
                else:
                    records[run_id] = (str(have[0]), have[1])
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

    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        end = -1 if limit is None else after + limit - 1
        key = self.keys.events(run_id)
        rows = await self._call(lambda: self.client.lrange(key, after, end))
        return [loads(row) for row in cast(list[str], rows)]

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        start = f"{after + 1}-0"
        feed = self.keys.feed
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self._call(lambda: self.client.xrange(feed, start, "+", count=limit)),
        )
        return [(int(entry_id.split("-", 1)[0]), loads(fields["e"])) for entry_id, fields in rows]

    async def get_run(self, run_id: str) -> RunRecord | None:
        key = self.keys.run(run_id)
        text = await self._call(lambda: self.client.hget(key, "rec"))
        return codec.decode_record(text) if text is not None else None

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        res = await self._script("list_runs", [flow or "", status or "", cursor or "", limit])
        return Page([codec.decode_record(text) for text in res[1:]], res[0] or None)

    # -- state ------------------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(self.keys.state(scope), key)
            pipe.hget(self.keys.state_expiry(scope), key)
            return await pipe.execute()

        value, expires = await self._call(read)
        if value is None or (expires is not None and float(expires) <= now()):
            return False, None
        return True, loads(value)

    async def state_items(self, scope: str) -> dict[str, Any]:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.state(scope))
            pipe.hgetall(self.keys.state_expiry(scope))
            return await pipe.execute()

        values, expiry = await self._call(read)
        ts = now()
        return {k: loads(v) for k, v in values.items() if k not in expiry or float(expiry[k]) > ts}

    # -- queues and jobs --------------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]:
        async def read() -> tuple[list[str], list[dict[str, str]], set[str]]:
            queues = sorted(cast(set[str], await self.client.smembers(self.keys.queues)))
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                pipe.hgetall(self.keys.counts(queue))
            pipe.smembers(self.keys.paused)
            res = await pipe.execute()
            return queues, cast(list[dict[str, str]], res[:-1]), cast(set[str], res[-1])

        queues, counts, paused = await self._call(read)
        out = {
            q: {s: int(n) for s, n in c.items() if int(n)}
            for q, c in zip(queues, counts, strict=True)
        }
        for queue in paused:
            out.setdefault(queue, {})
        return out

    async def completed_last_minute(self) -> dict[str, int]:
        """Jobs completed per queue in about the last minute, from per-minute counters that
        ``finish_job`` keeps (the previous minute weighted by the part still in the window)."""
        ts = now()
        minute = int(ts // 60)
        weight = 1.0 - (ts / 60 - minute)

        async def read() -> tuple[list[str], list[Any]]:
            queues = sorted(cast(set[str], await self.client.smembers(self.keys.queues)))
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                pipe.get(self.keys.done(queue, minute))
                pipe.get(self.keys.done(queue, minute - 1))
            return queues, await pipe.execute()

        queues, res = await self._call(read)
        return {
            q: int(int(res[2 * i] or 0) + weight * int(res[2 * i + 1] or 0))
            for i, q in enumerate(queues)
        }

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

    async def paused_queues(self) -> set[str]:
        key = self.keys.paused
        members: set[str] = await self._call(lambda: self.client.smembers(key))  # type: ignore[arg-type, return-value]
        return set(members)

    async def get_job(self, job_id: str) -> Job | None:
        key = self.keys.job(job_id)
        h: dict[str, str] = await self._call(lambda: self.client.hgetall(key))  # type: ignore[arg-type, return-value]
        if not h:
            return None
        h["id"] = job_id
        return codec.decode_job(h)

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        res = await self._script("list_jobs", [queue, state or "", cursor or "", limit])
        items = [
            codec.decode_job(dict(zip(flat[::2], flat[1::2], strict=True))) for flat in res[1:]
        ]
        return Page(items, res[0] or None)

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

    # -- retention --------------------------------------------------------------------------------
    async def _maybe_sweep(self) -> None:
        """Age-based retention, at most every few seconds, by one process at a time."""
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
        if cutoffs == ["", "", ""]:
            return
        try:
            got = await self.client.set(self.keys.sweep, "1", nx=True, ex=int(SWEEP_EVERY))
            if got:
                await self._script("sweep", cutoffs, ts)
        except (RedisError, OSError, BackendUnavailable) as exc:
            logger.debug("retention sweep skipped: %s", exc)


def _hiredis_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """The connection class with commands packed by hiredis (C) rather than redis-py's Python
    loop, which was ~15% of a busy worker's CPU time (commit scripts have many arguments).
    The bytes are the same; anything hiredis does not take goes to redis-py's packer."""
    try:
        from hiredis import pack_command
    except ImportError:  # pragma: no cover - hiredis comes with the redis extra
        return cls
    base_pack = cls.pack_command

    def pack(self: AbstractConnection, *args: Any) -> list[bytes]:
        if not (isinstance(args[0], str) and " " in args[0]):
            try:
                return [pack_command(args)]
            except (TypeError, ValueError):
                pass
        return base_pack(self, *args)

    return type(f"HiredisPacking{cls.__name__}", (cls,), {"pack_command": pack})
