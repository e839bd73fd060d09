"""Awaits at run time: resolving them (API, webhook token, events), acting on their timers,
listing them, and calling the steps' await hooks.

Every change is one commit on the run under its version, so a resolution racing a timeout,
or two concurrent webhook calls, end in exactly one outcome on any number of processes.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from flowtide._util.clock import now
from flowtide.backends.base import Timer, Transition
from flowtide.engine import await_plan as aw
from flowtide.engine import orchestrator as orch
from flowtide.engine.runs import InvalidInput, NotFound, RunService, validation_errors
from flowtide.events import Event, NewEvent, RunRecord

__all__ = ["AwaitService", "Gone", "MethodNotAllowed"]

logger = logging.getLogger("flowtide.awaits")
Gone = orch.Gone
_HOOKS = {
    "await.registered": "on_register",
    "await.resolved": "on_resolve",
    "await.timed_out": "on_timeout",
}


class MethodNotAllowed(Exception):
    def __init__(self, allowed: str) -> None:
        super().__init__(f"this await accepts {allowed} only")
        self.allowed = allowed


class AwaitService:
    def __init__(self, service: RunService) -> None:
        self.service = service
        self.backend = service.backend
        service.listeners.append(self._call_hooks)

    # -- resolving ---------------------------------------------------------------------------
    async def resolve(
        self,
        await_id: str,
        data: Any = None,
        source: str = "api",
        ts: float | None = None,
        record: RunRecord | None = None,
    ) -> list[Event]:
        """Resolve a pending await. NotFound if unknown; Gone if no longer pending.
        ``record``: the run as just read (the commit checks it again under its version)."""
        run_id = await_id.rsplit(":", 2)[0]
        if record is None:
            record = await self.backend.get_run(run_id)
        if record is None or await_id not in record.awaits:
            raise NotFound(f"unknown await {await_id!r}")
        entry = record.awaits[await_id]
        if entry["status"] != "pending" or record.terminal:
            state = record.status if record.terminal else entry["status"]
            raise Gone(f"await {await_id} is no longer pending ({state})")
        graph = self.service.registry.flows.get(record.flow)
        if graph is None:
            raise NotFound(f"flow {record.flow!r} is not loaded by this process")
        self._validate(graph, entry, data)
        policy, when = self.service.policy, ts or now()

        def decide(stored: RunRecord | None) -> Transition:
            if ts is not None and stored is not None:
                entry = stored.awaits.get(await_id)
                if entry is not None and entry["registered_at"] >= ts:
                    raise Gone("the event was published before the await was registered")
            return orch.resolve_await(graph, stored, await_id, data, when, policy, source)

        try:
            return await self.service.commit(run_id, decide)
        except LookupError:
            raise NotFound(f"unknown await {await_id!r}") from None

    async def resolve_token(self, token: str, method: str, data: Any) -> list[Event]:
        """A call of a webhook await's URL."""
        found = await self.backend.get_record(aw.TOKENS, token)
        if found is None:
            raise NotFound("unknown await token")
        record = await self.backend.get_run(found["run_id"])
        entry = record.awaits.get(found["await_id"]) if record is not None else None
        if record is None or entry is None:
            raise NotFound("unknown await token")
        if entry.get("method", "POST") != method.upper():
            raise MethodNotAllowed(entry.get("method", "POST"))
        return await self.resolve(found["await_id"], data, "webhook", record=record)

    def _validate(self, graph: Any, entry: dict[str, Any], data: Any) -> None:
        step = graph.steps.get(entry["step"])
        decl = orch._declaration(step, entry["position"])
        if decl is None or decl.schema is None:
            return
        import pydantic

        try:
            pydantic.TypeAdapter(decl.schema).validate_python(data)
        except pydantic.ValidationError as exc:
            raise InvalidInput("invalid await payload", validation_errors(exc)) from None

    async def on_event(self, name: str, payload: Any, ts: float) -> int:
        """Resolve every event await on ``name`` registered before ``ts`` whose match fits."""
        resolved, after = 0, None
        while True:
            page = await self.backend.list_records(aw.event_collection(name), 500, after)
            for aid, info in page:
                if info["registered_at"] >= ts or not aw.matches(payload, info["match"]):
                    continue
                try:
                    await self.resolve(aid, payload, "event", ts)
                    resolved += 1
                except (Gone, NotFound):
                    pass
            if len(page) < 500:
                return resolved
            after = page[-1][0]

    async def timer_due(self, timer: Timer) -> None:
        """The await's deadline: the commit resolves it, times it out, re-arms or drops the
        timer, all under the run's version (a racing resolution wins or loses as a whole)."""
        run_id, aid = timer.data["run_id"], timer.data["await_id"]
        record = await self.backend.get_run(run_id)
        if record is None:
            await self.backend.delete_timer(timer.id)
            return
        graph = self.service.registry.flows.get(record.flow)
        if graph is None:
            return  # another app's flow: its claim lapses and a process that loads it acts
        policy, ts = self.service.policy, now()
        await self.service.commit(
            run_id, lambda stored: orch.await_due(graph, stored, aid, ts, policy)
        )

    # -- listing -----------------------------------------------------------------------------
    async def list_pending(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        page = await self.backend.list_records(aw.AWAITS, limit + 1, cursor)
        items = [value for _, value in page[:limit]]
        return items, (page[limit - 1][0] if len(page) > limit else None)

    # -- hooks -------------------------------------------------------------------------------
    async def _call_hooks(self, events: list[Event]) -> None:
        for ev in events:
            hook_name = _HOOKS.get(ev["type"])
            if hook_name is None:
                continue
            graph = self.service.registry.flows.get(ev["flow"])
            step = graph.steps.get(ev["step"]) if graph is not None else None
            hook = step.hooks.get(hook_name) if step is not None else None
            if hook is None:
                continue
            info = {"run_id": ev["run_id"], "flow": ev["flow"], "step": ev["step"], **ev["data"]}
            try:
                result = hook(info)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # a hook never blocks the await
                logger.warning("await hook %s of %s failed: %s", hook_name, ev["step"], exc)
                message = f"await hook {hook_name} failed: {type(exc).__name__}: {exc}"
                log = NewEvent("log", {"level": "error", "message": message}, ev["step"])
                try:
                    await self.backend.append_events(ev["run_id"], [log])
                except Exception:
                    logger.exception("could not record the hook failure")
