"""Run and job operations shared by the client API, the HTTP API and handlers' contexts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic

from flowtide._util.clock import now
from flowtide._util.durations import Duration, parse_duration
from flowtide._util.ids import uuid7
from flowtide._util.jsonutil import NotSerializable, dumps
from flowtide.backends.base import (
    Backend,
    CommitItem,
    Decide,
    Job,
    JobUpdate,
    RecordOp,
    Transition,
)
from flowtide.config import Config
from flowtide.engine import orchestrator as orch
from flowtide.events import Event, RunRecord, reduce_state, reduce_view
from flowtide.registry import Registry

__all__ = ["InvalidInput", "NotFound", "RunService"]


class NotFound(LookupError):
    """An unknown flow, function, run or job."""


class InvalidInput(ValueError):
    """Input that fails validation; ``errors`` are pydantic-style field errors."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def validation_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False)
    ]


class RunService:
    def __init__(self, backend: Backend, registry: Registry, config: Config) -> None:
        self.backend = backend
        self.registry = registry
        self.config = config
        self.policy = orch.Policy(
            clear_state_on_end=config.state.cleanup == "on-complete", base_url=config.base_url
        )
        # Called with the events of every commit this process makes through ``commit``
        # (await hooks); and the event names whose emits others listen to (triggers, awaits).
        self.listeners: list[Callable[[list[Event]], Awaitable[None]]] = []
        self.emit_interest: Callable[[str], bool] = lambda name: False
        self.nudge: Callable[[], None] = lambda: None  # wakes this process's scheduler

    async def commit(
        self, run_id: str | None, decide: Decide, new_run: bool = False
    ) -> list[Event]:
        """Commit one decision and tell the listeners what it appended."""
        (events,) = await self.backend.commit([CommitItem(run_id, decide, new_run=new_run)])
        await self.committed(events)
        return events

    async def committed(self, events: list[Event]) -> None:
        if events:
            for listener in self.listeners:
                await listener(events)

    # -- starting and controlling runs ------------------------------------------------------
    def _graph(self, flow: str) -> Any:
        graph = self.registry.flows.get(flow)
        if graph is None:
            raise NotFound(f"unknown flow {flow!r}")
        return graph

    def check_input(self, flow: str, payload: Any) -> Any:
        """Validate a start input against the entry step's annotation; return it as JSON."""
        graph = self._graph(flow)
        model = graph.inputs[graph.entry.name]
        if model.adapter is not None:
            try:
                model.adapter.validate_python(payload)
            except pydantic.ValidationError as exc:
                raise InvalidInput(
                    f"invalid input for flow {flow!r}", validation_errors(exc)
                ) from None
        try:
            dumps(payload)
        except NotSerializable as exc:
            raise InvalidInput(f"invalid input for flow {flow!r}: {exc}") from None
        return payload

    async def start(
        self,
        flow: str,
        payload: Any = None,
        trigger: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Start a run. With ``run_id`` given, a run that already has it is left alone."""
        run_id = run_id or uuid7()
        await self.start_new(flow, payload, trigger, run_id)
        return run_id

    async def start_new(
        self,
        flow: str,
        payload: Any,
        trigger: dict[str, Any] | None,
        run_id: str,
        records: list[RecordOp] | None = None,
    ) -> bool:
        """Start run ``run_id`` unless it exists; ``records`` are written with it, atomically.
        True if this call started it."""
        graph = self._graph(flow)
        payload = self.check_input(flow, payload)
        ts = now()
        stall_after = self.config.flow.stall_timeout
        policy = self.policy

        def decide(stored: RunRecord | None) -> Transition:
            t = orch.start_run(graph, run_id, payload, trigger, ts, stall_after, policy, stored)
            if t.run is not None and records:
                t.records.extend(records)
            return t

        return bool(await self.commit(run_id, decide, new_run=True))

    async def cancel(self, run_id: str, reason: str = "canceled") -> None:
        ts = now()

        def decide(record: RunRecord | None) -> Transition:
            return orch.cancel_run(record, reason, ts, self.policy)

        try:
            await self.commit(run_id, decide)
        except LookupError:
            raise NotFound(f"unknown run {run_id!r}") from None

    async def restart(self, run_id: str) -> str:
        record = await self.backend.get_run(run_id)
        if record is None:
            raise NotFound(f"unknown run {run_id!r}")
        new_id = await self.start(record.flow, record.input, record.trigger)
        if not record.terminal:
            try:
                await self.cancel(run_id, f"restarted as {new_id}")
            except orch.Conflict:
                pass  # it ended meanwhile
        return new_id

    # -- standalone jobs -------------------------------------------------------------------
    async def enqueue(
        self,
        function: str,
        payload: Any = None,
        *,
        delay: Duration | None = None,
        key: str | None = None,
        priority: int | None = None,
    ) -> str:
        (job_id,) = await self.enqueue_many(
            function, [payload], delay=delay, key=key, priority=priority
        )
        return job_id

    async def enqueue_many(
        self,
        function: str,
        payloads: list[Any],
        *,
        delay: Duration | None = None,
        key: str | None = None,
        priority: int | None = None,
    ) -> list[str]:
        """Enqueue one job per payload in one atomic write; all or none are accepted."""
        fn = self.registry.functions.get(function)
        if fn is None:
            raise NotFound(f"unknown function {function!r}")
        model = self.registry.function_inputs[function]
        for payload in payloads:
            if model.adapter is not None:
                try:
                    model.adapter.validate_python(payload)
                except pydantic.ValidationError as exc:
                    errors = validation_errors(exc)
                    raise InvalidInput(f"invalid input for {function!r}", errors) from None
        try:
            dumps(payloads)
        except NotSerializable as exc:
            raise InvalidInput(f"invalid input for {function!r}: {exc}") from None
        ts = now()
        run_at = ts + (parse_duration(delay) if delay is not None else 0.0)
        opts = fn.options
        jobs = [
            Job(
                id=uuid7(),
                queue=opts.queue,
                name=function,
                input=payload,
                priority=opts.priority if priority is None else priority,
                run_at=run_at,
                created_at=ts,
                key=key,
            )
            for payload in payloads
        ]
        return await self.backend.enqueue(jobs)

    async def retry_job(self, job_id: str) -> None:
        job = await self.backend.get_job(job_id)
        if job is None:
            raise NotFound(f"unknown job {job_id!r}")
        if job.state not in ("failed", "canceled"):
            raise orch.Conflict(f"job {job_id} is {job.state}; only failed or canceled jobs retry")
        if job.run_id is None:
            update = JobUpdate(job_id, "waiting", reset_attempts=True)
            await self.backend.commit([CommitItem(None, lambda _: Transition(jobs=[update]))])
            return
        ts = now()

        def decide(record: RunRecord | None) -> Transition:
            if record is None or record.terminal:
                status = record.status if record else "gone"
                raise orch.Conflict(f"run {job.run_id} is {status}; restart the run instead")
            return orch.retry_step(record, job, ts)

        await self.backend.commit([CommitItem(job.run_id, decide)])

    # -- reading -------------------------------------------------------------------------------
    async def view(self, run_id: str) -> dict[str, Any]:
        record = await self.backend.get_run(run_id)
        if record is None:
            raise NotFound(f"unknown run {run_id!r}")
        events = await self.backend.read_events(run_id)
        return self._view(record, events)

    @staticmethod
    def _view(record: RunRecord, events: list[Any]) -> dict[str, Any]:
        view = reduce_view(events)
        summary = record.summary()
        view.update(summary)
        view["status"] = record.status
        view["input"] = record.input
        view["error"] = record.error
        view["result"] = record.result
        return view

    async def state_at(self, run_id: str, at: int | None) -> dict[str, Any]:
        record = await self.backend.get_run(run_id)
        if record is None:
            raise NotFound(f"unknown run {run_id!r}")
        events = await self.backend.read_events(run_id)
        last = events[-1]["seq"] if events else 0
        seq = last if at is None else min(at, last)
        return {"at": seq, "state": reduce_state(events, seq, now() if at is None else None)}

    async def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            record = await self.backend.get_run(run_id)
            if record is None:
                raise NotFound(f"unknown run {run_id!r}")
            if record.terminal:
                return self._view(record, await self.backend.read_events(run_id))
            left = 0.5 if deadline is None else min(0.5, deadline - loop.time())
            if left <= 0:
                raise TimeoutError(f"run {run_id} is still {record.status} after {timeout}s")
            await self.backend.wait_for_change(left)
