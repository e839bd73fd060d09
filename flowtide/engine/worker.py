"""The worker loop: claim jobs in batches, run them concurrently, commit outcomes in groups.

Leases are renewed by one heartbeat task for every job in flight. On shutdown the worker stops
claiming, lets in-flight jobs finish within the grace period, then gives the rest back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends._common import reclaim_exhausted_error
from flowtide.backends.base import MAX_RECLAIMS, CommitItem, Job, Timer, Transition
from flowtide.definitions.flow import FunctionDef, StepDef
from flowtide.engine import orchestrator as orch
from flowtide.engine.committer import ClaimArgs, Committer
from flowtide.engine.context import Context, TriggerInfo
from flowtide.engine.executor import Attempt, handler_ref, run_handler, run_in_child
from flowtide.engine.runs import RunService
from flowtide.events import RunRecord
from flowtide.runtimes import PoolOptions, RuntimePools, options_from_config

__all__ = ["Worker"]

logger = logging.getLogger("flowtide.worker")
LOG_FLUSH_INTERVAL = 0.25


class Worker:
    def __init__(
        self,
        service: RunService,
        *,
        queues: Collection[str] | None = None,
        concurrency: int | None = None,
        lease: float | None = None,
        shutdown_grace: float | None = None,
        name: str | None = None,
        runtimes: dict[str, PoolOptions] | None = None,
    ) -> None:
        cfg = service.config.worker
        self.service = service
        self.backend = service.backend
        self.registry = service.registry
        wanted = list(queues) if queues is not None else list(cfg.queues)
        self.queues: set[str] | None = None if "*" in wanted else set(wanted)
        self.concurrency = concurrency or cfg.concurrency
        self.lease = lease or cfg.lease
        self.grace = cfg.shutdown_grace if shutdown_grace is None else shutdown_grace
        self.poll = cfg.poll_interval
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid7()[-8:]}"
        self.caps = {q: c for q, c in self.registry.queues().items() if c is not None}
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.inflight_queue: dict[str, str] = {}
        self.released: set[str] = set()
        self._outboxed: set[str] = set()  # jobs whose commit carries emit outbox timers
        self.processed = 0
        self._threads = ThreadPoolExecutor(max(4, self.concurrency), "flowtide-step")
        # Slots promised to claims in flight (the claim loop's and the committer's).
        self._reserved = 0
        self._committer = Committer(self.backend, self._claim_for_commit, self._claimed_by_commit)
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = False
        self._late: list[Job] = []  # claimed with a commit after the drain: given back
        self._contexts: dict[str, Context] = {}
        # Child-process pools (runtime="python-process"/"node"): started on first use.
        if runtimes is None:
            runtimes = options_from_config(service.config.runtimes)
        self.runtimes = RuntimePools(runtimes, cwd=str(service.config.root))

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; ``run`` returns once in-flight jobs finished or were given back."""
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        self._committer.start()
        beat = asyncio.create_task(self._heartbeat(), name="flowtide-heartbeat")
        logs = asyncio.create_task(self._flush_logs(), name="flowtide-logs")
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            self._drained = True
            beat.cancel()
            logs.cancel()
            await self._committer.close()
            if self._late:
                await self.backend.release(self.id, [job.id for job in self._late])
            await self.runtimes.stop()
            self._threads.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        # a loop: a claim made with a commit just before stopping may start jobs meanwhile
        while self.inflight and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(list(self.inflight.values()), timeout=remaining)
        left = [job_id for job_id, task in self.inflight.items() if not task.done()]
        if not left:
            return
        logger.warning("giving back %d job(s) still running after the grace period", len(left))
        self.released.update(left)
        for job_id in left:
            self.inflight[job_id].cancel()
        await asyncio.gather(*(self.inflight[j] for j in left), return_exceptions=True)
        await self.backend.release(self.id, left)

    # -- claiming ------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            claimed = 0
            free = self.concurrency - len(self.inflight) - self._reserved
            if free > 0:
                self._reserved += free
                try:
                    jobs = await self._claim(free)
                except Exception as exc:
                    logger.warning("claiming jobs failed: %s", exc)
                    jobs = []
                    await asyncio.sleep(min(1.0, self.poll * 10))
                finally:
                    self._reserved -= free
                for job in jobs:
                    self._start(job)
                claimed = len(jobs)
            if claimed == 0 or len(self.inflight) + self._reserved >= self.concurrency:
                await self._idle(free > 0)

    async def _idle(self, has_slots: bool) -> None:
        self._slot_freed.clear()
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._slot_freed.wait())]
        if has_slots:
            waits.append(asyncio.ensure_future(self.backend.wait_for_change(self.poll)))
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for fut in pending:
            fut.cancel()

    def _eligible(self) -> tuple[set[str] | None, set[str], dict[str, int]]:
        busy: dict[str, int] = {}
        for queue in self.inflight_queue.values():
            busy[queue] = busy.get(queue, 0) + 1
        capped = {q: c - busy.get(q, 0) for q, c in self.caps.items()}
        if self.queues is not None:
            capped = {q: n for q, n in capped.items() if q in self.queues}
        return self.queues, set(self.caps), capped

    async def _claim(self, free: int) -> list[Job]:
        queues, exclude, capped = self._eligible()
        jobs = await self.backend.claim(self.id, queues, free, self.lease, exclude)
        for queue, slots in capped.items():
            room = min(slots, free - len(jobs))
            if room > 0:
                jobs += await self.backend.claim(self.id, [queue], room, self.lease)
        return jobs

    def _claim_for_commit(self, finishing: int) -> ClaimArgs | None:
        """The claim to make with a commit of ``finishing`` outcomes (backends that can),
        for the slots free once they are done; the slots stay reserved until
        ``_claimed_by_commit``."""
        if self._stopping.is_set():
            return None
        free = self.concurrency - len(self.inflight) - self._reserved + finishing
        if free <= 0:
            return None
        queues, exclude, _ = self._eligible()
        self._reserved += free
        return self.id, queues, free, self.lease, exclude

    def _claimed_by_commit(self, jobs: list[Job], reserved: int) -> None:
        self._reserved -= reserved
        if self._drained:
            self._late += jobs
            return
        for job in jobs:
            self._start(job)
        if len(jobs) < reserved:
            self._slot_freed.set()  # the claim loop may use the rest

    def _start(self, job: Job) -> None:
        self.inflight_queue[job.id] = job.queue
        self.inflight[job.id] = asyncio.create_task(self._process(job), name=f"job:{job.id}")

    async def _flush_logs(self) -> None:
        """Logs of long attempts reach the run history while they run, not only at the end."""
        while True:
            await asyncio.sleep(LOG_FLUSH_INTERVAL)
            for ctx in list(self._contexts.values()):
                logs = ctx._buffer.take_logs()
                if logs and ctx.run_id is not None:
                    try:
                        await self.backend.append_events(ctx.run_id, logs)
                    except Exception as exc:
                        ctx._buffer.logs[:0] = logs  # they go out with the commit instead
                        logger.warning("flushing logs failed: %s", exc)

    async def _heartbeat(self) -> None:
        interval = max(self.lease / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if not self.inflight:
                continue
            try:
                await self.backend.heartbeat(self.id, list(self.inflight), self.lease)
            except Exception as exc:
                logger.warning("heartbeat failed: %s", exc)

    # -- running one job -------------------------------------------------------------------------
    async def _process(self, job: Job) -> None:
        try:
            item = await self._attempt(job)
            if item is not None and job.id not in self.released:
                events = await self._committer.submit(item)
                self.processed += 1
                if self.service.listeners and events:
                    await self.service.committed(events)
                if job.id in self._outboxed:  # its emits wait in the outbox: act on them now
                    self.service.nudge()
        except asyncio.CancelledError:
            if job.id not in self.released:
                raise
        except Exception:
            logger.exception("job %s could not be committed; its lease will expire", job.id)
        finally:
            self.inflight.pop(job.id, None)
            self.inflight_queue.pop(job.id, None)
            self._outboxed.discard(job.id)
            self._slot_freed.set()

    async def _attempt(self, job: Job) -> CommitItem | None:
        timeout: float | None
        if job.reclaims > MAX_RECLAIMS:
            return self._outcome(
                job, Attempt(False, error=reclaim_exhausted_error(job), retryable=False)
            )
        if job.run_id is not None:
            graph = self.registry.flows.get(job.flow or "")
            step = graph.steps.get(job.name) if graph is not None else None
            if graph is None or step is None:
                return self._missing(job, f"step {job.flow}.{job.name}")
            defn: StepDef | FunctionDef = step
            handler, is_async, model = step.handler, step.is_async, graph.inputs[job.name]
            timeout = step.options.timeout or self.service.config.flow.step_timeout
            trigger, awaited = None, None
            if step.await_before is not None:
                record = await self.backend.get_run(job.run_id)
                entry = record.awaits.get(f"{job.run_id}:{job.name}:before") if record else None
                awaited = entry.get("payload") if entry else None
            if job.name == graph.entry.name:
                # A backend may remember the record it claimed the job with (``cached_run``,
                # optional): the trigger never changes in a run, so that copy is as good.
                cached = getattr(self.backend, "cached_run", None)
                record = cached(job.run_id) if cached is not None else None
                if record is None:
                    record = await self.backend.get_run(job.run_id)
                if record is not None and record.trigger:
                    trigger = TriggerInfo(**record.trigger)
        else:
            fn = self.registry.functions.get(job.name)
            if fn is None:
                return self._missing(job, f"function {job.name}")
            defn = fn
            handler, is_async = fn.handler, fn.is_async
            model, timeout = self.registry.function_inputs[job.name], fn.options.timeout
            trigger, awaited = None, None
        ctx = Context(
            backend=self.backend,
            control=self.service,
            job_id=job.id,
            run_id=job.run_id,
            flow=job.flow,
            step=job.name,
            attempt=job.attempt,
            trigger=trigger,
            awaited=awaited,
            default_ttl=self.service.config.state.ttl
            if self.service.config.state.cleanup == "ttl"
            else None,
        )
        self._contexts[job.id] = ctx
        try:
            runtime = defn.options.runtime
            if runtime != "python":
                attempt = await run_in_child(
                    self.runtimes, runtime, handler_ref(defn), model, job.input, ctx, timeout
                )
            else:
                assert handler is not None
                attempt = await run_handler(
                    handler, is_async, model, job.input, ctx, timeout, self._threads
                )
        finally:
            self._contexts.pop(job.id, None)
        return self._outcome(job, attempt, ctx)

    def _outbox(self, job: Job, emits: list[tuple[str, Any]], ts: float) -> list[Timer]:
        """Emits that event triggers or event awaits listen to, as timers due now: the
        scheduler acts on each exactly once, after the step's commit made it durable."""
        timers = [
            Timer(
                f"emit:{job.id}:{i}",
                ts,
                "emit",
                {"name": name, "payload": payload, "ts": ts, "run_id": job.run_id},
            )
            for i, (name, payload) in enumerate(emits)
            if self.service.emit_interest(name)
        ]
        if timers:
            self._outboxed.add(job.id)
        return timers

    def _missing(self, job: Job, what: str) -> CommitItem:
        message = f"{what} is not defined in this worker's app (is it deployed here?)"
        return self._outcome(
            job, Attempt(False, error={"type": "NotFound", "message": message}, retryable=False)
        )

    def _retry_at(self, job: Job, attempt: Attempt) -> float | None:
        if not attempt.retryable:
            return None
        if job.run_id is not None:
            graph = self.registry.flows.get(job.flow or "")
            opts = graph.steps[job.name].options if graph and job.name in graph.steps else None
        else:
            fn = self.registry.functions.get(job.name)
            opts = fn.options if fn else None
        if opts is None or job.attempt - job.reclaims > opts.retries:
            return None
        return now() + opts.backoff.delay(job.attempt - job.reclaims)

    def _outcome(self, job: Job, attempt: Attempt, ctx: Context | None = None) -> CommitItem:
        effects = ctx._buffer.effects(ctx._scope) if ctx is not None else orch.NO_EFFECTS
        ts = now()
        if attempt.ok and effects.emits and job.run_id is not None:
            effects.outbox = self._outbox(job, effects.emits, ts)
        # A failure counts only while this is still the job's current attempt.
        guard = None if attempt.ok else (job.id, job.attempt)
        if job.run_id is None:
            if attempt.ok:
                t = orch.function_succeeded(job, attempt.result, effects)
            else:
                assert attempt.error is not None
                t = orch.function_failed(job, attempt.error, self._retry_at(job, attempt))
            return CommitItem(None, lambda _: t, guard)
        graph = self.registry.flows.get(job.flow or "")
        policy = self.service.policy
        retry_at = None if attempt.ok else self._retry_at(job, attempt)

        def decide(record: RunRecord | None) -> Transition:
            if graph is None:
                return Transition()
            if attempt.ok:
                return orch.step_succeeded(
                    graph, record, job, attempt.result, effects, attempt.duration_ms, ts, policy
                )
            assert attempt.error is not None
            return orch.step_failed(
                graph, record, job, attempt.error, retry_at, ts, policy, effects.logs
            )

        return CommitItem(job.run_id, decide, guard)
