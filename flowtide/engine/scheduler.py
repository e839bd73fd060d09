"""Timers: each due timer is acted on by exactly one process (DESIGN A10 item 3).

Kinds: ``stall`` (a run's stall deadline), ``await`` (an await's deadline), ``schedule`` (a
schedule trigger's next occurrence) and ``emit`` (a step's emit that event triggers or event
awaits listen to: an outbox entry committed with the step).

A run is stalled only when it lost its work: a step the run counts as active has no job that is
waiting, delayed or leased. A backlog, a long step with a live lease, an await, or a restarted
process never stalls a run: the deadline is moved instead.
"""

from __future__ import annotations

import asyncio
import logging

from flowtide._util.clock import now
from flowtide.backends.base import CommitItem, Timer, Transition
from flowtide.engine import orchestrator as orch
from flowtide.engine.runs import RunService
from flowtide.engine.schedules import ScheduleService
from flowtide.engine.triggers import TriggerService
from flowtide.events import RunRecord

__all__ = ["Scheduler"]

logger = logging.getLogger("flowtide.scheduler")
TIMER_LEASE = 30.0


class Scheduler:
    def __init__(
        self,
        service: RunService,
        interval: float = 0.5,
        triggers: TriggerService | None = None,
    ) -> None:
        self.service = service
        self.backend = service.backend
        self.interval = interval
        self.triggers = triggers
        self.schedules = ScheduleService(triggers) if triggers is not None else None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        service.nudge = self._wake.set

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            claimed = 0
            try:
                claimed = await self.tick()
            except Exception as exc:
                logger.warning("timer check failed: %s", exc)
            if claimed:
                continue  # there may be more due
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def tick(self) -> int:
        timers = await self.backend.claim_timers(now(), 100, TIMER_LEASE)
        for timer in timers:
            try:
                await self._act(timer)
            except Exception:
                # the claim lease runs out and the timer is tried again
                logger.exception("timer %s (%s) failed", timer.id, timer.kind)
        return len(timers)

    async def _act(self, timer: Timer) -> None:
        if timer.kind == "stall":
            await self._stall_check(timer)
        elif self.triggers is None:
            logger.debug("no handler for timer kind %s; leaving it", timer.kind)
        elif timer.kind == "await":
            await self.triggers.awaits.timer_due(timer)
        elif timer.kind == "schedule" and self.schedules is not None:
            await self.schedules.due(timer)
        elif timer.kind == "emit":
            await self.triggers.emit_due(timer)

    async def _stall_check(self, timer: Timer) -> None:
        run_id = timer.data["run_id"]
        record = await self.backend.get_run(run_id)
        if record is None or record.terminal:
            await self.backend.delete_timer(timer.id)
            return
        graph = self.service.registry.flows.get(record.flow)
        stall_after = self.service.config.flow.stall_timeout
        if stall_after is None:
            stall_after = graph.stall_timeout if graph is not None else 3600.0
        ts = now()
        if record.updated_at + stall_after > ts or await self._has_live_work(record):
            due = max(record.updated_at, ts) + stall_after
            await self._rearm(timer, due)
            return
        reason = "no job of the run's active steps exists any more; its work was lost"
        version = record.version
        policy = self.service.policy

        def decide(stored: RunRecord | None) -> Transition:
            t = orch.stall_run(stored, version, reason, ts, policy)
            if t.run is None:
                t.timers.append(Timer(timer.id, ts, timer.kind, timer.data))  # look again
            return t

        await self.backend.commit([CommitItem(run_id, decide)])

    async def _has_live_work(self, record: RunRecord) -> bool:
        for step in record.active:
            job = await self.backend.get_job(orch.step_job_id(record.run_id, step))
            if job is not None and job.state in ("waiting", "delayed", "active"):
                return True
        return record.status == "awaiting"

    async def _rearm(self, timer: Timer, due: float) -> None:
        fresh = Timer(timer.id, due, timer.kind, timer.data)
        await self.backend.commit([CommitItem(None, lambda _: Transition(timers=[fresh]))])
