"""The context a handler receives: identity, logging, run state, emits, and flow control.

Emits and state writes are buffered and committed atomically with the step's completion
(DESIGN A10 item 2); reads see the attempt's own buffered writes first. ``def`` handlers get
:class:`SyncContext`, whose methods have the same names but block instead of being awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from flowtide._util.clock import now
from flowtide._util.durations import Duration, parse_duration
from flowtide._util.jsonutil import NotSerializable, dumps
from flowtide.backends.base import Backend, StateOp
from flowtide.engine.orchestrator import Effects
from flowtide.events import NewEvent

__all__ = ["Context", "SyncContext", "TriggerInfo"]

T = TypeVar("T")
_MISSING = object()
logger = logging.getLogger("flowtide.run")


class FlowControl(Protocol):
    async def start(self, flow: str, input: Any = None) -> str: ...

    async def cancel(self, run_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    name: str
    type: str
    data: Any = None
    fire_id: str | None = None


@dataclass(slots=True)
class AttemptBuffer:
    """What an attempt wrote that is committed together with its outcome."""

    emits: list[tuple[str, Any]] = field(default_factory=list)
    state: dict[str, tuple[str, Any, float | None]] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    logs: list[NewEvent] = field(default_factory=list)

    def effects(self, scope: str) -> Effects:
        ops = [
            StateOp(scope, key, "delete" if op == "delete" else "set", value, expires)
            for key, (op, value, expires) in self.state.items()
        ]
        return Effects(list(self.emits), ops, list(self.events), self.take_logs())

    def take_logs(self) -> list[NewEvent]:
        logs, self.logs = self.logs, []
        return logs


def _check_json(what: str, value: Any) -> None:
    try:
        dumps(value)
    except NotSerializable as exc:
        raise NotSerializable(f"{what}: {exc}") from None


class RunLogger:
    """``ctx.log``: a ``log`` event in the run history, and a record on the standard logger."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        ctx = self._ctx
        logger.log(
            logging.getLevelName(level.upper()),
            "%s",
            message,
            extra={"flowtide": {"run_id": ctx.run_id, "step": ctx.step, **fields}},
        )
        if ctx.run_id is None:
            return
        data = {"level": level, "message": str(message), "fields": fields}
        try:
            dumps(data)
        except NotSerializable:
            data["fields"] = {k: repr(v) for k, v in fields.items()}
        ctx._buffer.logs.append(NewEvent("log", data, ctx.step, ctx.attempt))

    def debug(self, message: str, **fields: Any) -> None:
        self._log("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._log("error", message, fields)


class RunState:
    """``ctx.state``: key-value state scoped to the run (to the job for standalone functions)."""

    def __init__(self, ctx: Context, default_ttl: float | None) -> None:
        self._ctx = ctx
        self._default_ttl = default_ttl

    async def get(self, key: str, default: Any = None) -> Any:
        buffered = self._ctx._buffer.state.get(key)
        if buffered is not None:
            op, value, expires = buffered
            if op == "delete" or (expires is not None and expires <= now()):
                return default
            return value
        found, value = await self._ctx._backend.get_state(self._ctx._scope, key)
        return value if found else default

    async def set(self, key: str, value: Any, ttl: Duration | None = None) -> None:
        _check_json(f"state value for key {key!r}", value)
        seconds = parse_duration(ttl) if ttl is not None else self._default_ttl
        expires = now() + seconds if seconds else None
        self._ctx._buffer.state[key] = ("set", value, expires)
        self._event({"key": key, "op": "set", "value": value, "ttl": seconds})

    async def delete(self, key: str) -> None:
        self._ctx._buffer.state[key] = ("delete", None, None)
        self._event({"key": key, "op": "delete"})

    async def items(self) -> dict[str, Any]:
        stored = await self._ctx._backend.state_items(self._ctx._scope)
        ts = now()
        for key, (op, value, expires) in self._ctx._buffer.state.items():
            if op == "delete" or (expires is not None and expires <= ts):
                stored.pop(key, None)
            else:
                stored[key] = value
        return stored

    def _event(self, data: dict[str, Any]) -> None:
        ctx = self._ctx
        if ctx.run_id is not None:
            ctx._buffer.events.append(NewEvent("state", data, ctx.step, ctx.attempt))


class FlowsHandle:
    """``ctx.flows``: start and cancel runs from inside a handler."""

    def __init__(self, control: FlowControl) -> None:
        self._control = control

    async def start(self, flow: str, input: Any = None) -> str:
        return await self._control.start(flow, input)

    async def cancel(self, run_id: str) -> None:
        await self._control.cancel(run_id)


class Context:
    """What an ``async def`` handler receives as ``ctx``."""

    def __init__(
        self,
        *,
        backend: Backend,
        control: FlowControl,
        job_id: str,
        run_id: str | None,
        flow: str | None,
        step: str,
        attempt: int,
        trigger: TriggerInfo | None = None,
        awaited: Any = None,
        default_ttl: float | None = None,
    ) -> None:
        self.run_id = run_id
        self.flow = flow
        self.step = step
        self.attempt = attempt
        self.job_id = job_id
        self.trigger = trigger
        self.awaited = awaited
        self._backend = backend
        self._scope = run_id if run_id is not None else f"job:{job_id}"
        self._buffer = AttemptBuffer()
        self.log = RunLogger(self)
        self.state = RunState(self, default_ttl)
        self.flows = FlowsHandle(control)

    async def emit(self, name: str, payload: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("ctx.emit needs an event name")
        _check_json(f"payload of emit {name!r}", payload)
        self._buffer.emits.append((name, payload))

    def __repr__(self) -> str:
        return f"Context(run_id={self.run_id!r}, flow={self.flow!r}, step={self.step!r})"


class _SyncState:
    def __init__(self, state: RunState, call: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._state, self._call = state, call

    def get(self, key: str, default: Any = None) -> Any:
        return self._call(self._state.get(key, default))

    def set(self, key: str, value: Any, ttl: Duration | None = None) -> None:
        self._call(self._state.set(key, value, ttl))

    def delete(self, key: str) -> None:
        self._call(self._state.delete(key))

    def items(self) -> dict[str, Any]:
        items: dict[str, Any] = self._call(self._state.items())
        return items


class _SyncFlows:
    def __init__(self, flows: FlowsHandle, call: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._flows, self._call = flows, call

    def start(self, flow: str, input: Any = None) -> str:
        run_id: str = self._call(self._flows.start(flow, input))
        return run_id

    def cancel(self, run_id: str) -> None:
        self._call(self._flows.cancel(run_id))


class SyncContext:
    """What a plain ``def`` handler (run in a thread) receives: the same names, blocking."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx, self._loop = ctx, loop
        self.run_id, self.flow, self.step = ctx.run_id, ctx.flow, ctx.step
        self.attempt, self.job_id = ctx.attempt, ctx.job_id
        self.trigger, self.awaited = ctx.trigger, ctx.awaited
        self.log = ctx.log
        self.state = _SyncState(ctx.state, self._call)
        self.flows = _SyncFlows(ctx.flows, self._call)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def emit(self, name: str, payload: Any = None) -> None:
        self._call(self._ctx.emit(name, payload))
