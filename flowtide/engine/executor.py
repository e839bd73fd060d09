"""One job attempt: validate input, call the handler under its timeout, classify the outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import pydantic

from flowtide._util.jsonutil import NotSerializable, dumps
from flowtide.definitions.flow import FunctionDef, StepDef
from flowtide.engine.context import Context, SyncContext
from flowtide.engine.runs import validation_errors
from flowtide.registry import InputModel
from flowtide.runtimes import Invocation, RuntimePools

__all__ = ["Attempt", "handler_ref", "run_handler", "run_in_child"]


@dataclass(slots=True)
class Attempt:
    """The outcome of running a handler once."""

    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True
    duration_ms: float = 0.0


def error_info(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }


def _call_args(handler: Callable[..., Any], arity: int, payload: Any, ctx: Any) -> tuple[Any, ...]:
    return ((), (payload,), (payload, ctx))[arity]


async def run_handler(
    handler: Callable[..., Any],
    is_async: bool,
    model: InputModel,
    payload: Any,
    ctx: Context,
    timeout: float | None,
    threads: Executor | None,
) -> Attempt:
    started = time.perf_counter()
    if model.adapter is not None:
        try:
            payload = model.adapter.validate_python(payload)
        except pydantic.ValidationError as exc:
            error = {
                "type": "ValidationError",
                "message": f"input failed validation: {exc.error_count()} error(s)",
                "errors": validation_errors(exc),
            }
            return Attempt(False, error=error, retryable=False)
    try:
        if is_async:
            coro = handler(*_call_args(handler, model.arity, payload, ctx))
            result = await asyncio.wait_for(coro, timeout)
        else:
            loop = asyncio.get_running_loop()
            sync_ctx = SyncContext(ctx, loop)
            call = functools.partial(handler, *_call_args(handler, model.arity, payload, sync_ctx))
            result = await asyncio.wait_for(loop.run_in_executor(threads, call), timeout)
    except TimeoutError:
        message = f"the step did not finish within its timeout of {timeout:g}s"
        elapsed = (time.perf_counter() - started) * 1000
        return Attempt(False, error={"type": "Timeout", "message": message}, duration_ms=elapsed)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Attempt(False, error=error_info(exc), duration_ms=elapsed)
    elapsed = (time.perf_counter() - started) * 1000
    if isinstance(result, pydantic.BaseModel):
        result = result.model_dump(mode="json")
    try:
        dumps(result)
    except NotSerializable as exc:
        message = f"the handler returned a value that is not JSON-serializable: {exc}"
        error = {"type": "NotSerializable", "message": message}
        return Attempt(False, error=error, retryable=False, duration_ms=elapsed)
    return Attempt(True, result=result, duration_ms=elapsed)


def handler_ref(defn: StepDef | FunctionDef) -> str:
    """What a child loads: the handler file (node), or ``module:qualname`` (python-process)."""
    if defn.options.runtime == "node" or defn.handler is None:
        return defn.handler_path or ""
    fn = defn.handler
    return f"{fn.__module__}:{fn.__qualname__}"


class _ContextHost:
    """Answers a child's context requests with the attempt's own :class:`Context`, so its
    emits and state writes are buffered and committed with the step like in-process ones."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def request(self, type: str, message: dict[str, Any]) -> Any:
        ctx = self.ctx
        if type == "state.get":
            return await ctx.state.get(str(message["key"]), message.get("default"))
        if type == "state.set":
            await ctx.state.set(str(message["key"]), message.get("value"), message.get("ttl"))
        elif type == "state.delete":
            await ctx.state.delete(str(message["key"]))
        elif type == "state.items":
            return await ctx.state.items()
        elif type == "emit":
            await ctx.emit(message.get("name"), message.get("payload"))  # type: ignore[arg-type]
        elif type == "flows.start":
            return await ctx.flows.start(str(message["flow"]), message.get("input"))
        elif type == "flows.cancel":
            await ctx.flows.cancel(str(message["run_id"]))
        return None

    def log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        method = getattr(self.ctx.log, level if level != "warn" else "warning", None)
        (method or self.ctx.log.info)(message, **fields)

    def output(self, stream: str, line: str) -> None:
        if line.strip():
            (self.ctx.log.info if stream == "stdout" else self.ctx.log.warning)(line, stream=stream)


async def run_in_child(
    pools: RuntimePools,
    runtime: str,
    handler: str,
    model: InputModel,
    payload: Any,
    ctx: Context,
    timeout: float | None,
) -> Attempt:
    """Run one attempt in a pooled child process (``runtime`` is not ``"python"``)."""
    started = time.perf_counter()
    if model.adapter is not None:
        try:
            model.adapter.validate_python(payload)
        except pydantic.ValidationError as exc:
            error = {
                "type": "ValidationError",
                "message": f"input failed validation: {exc.error_count()} error(s)",
                "errors": validation_errors(exc),
            }
            return Attempt(False, error=error, retryable=False)
    try:
        pool = pools.get(runtime, ts=handler.endswith(".ts"))
    except (OSError, ValueError) as exc:
        return Attempt(False, error=error_info(exc), retryable=False)
    context = {
        "run_id": ctx.run_id,
        "flow": ctx.flow,
        "step": ctx.step,
        "attempt": ctx.attempt,
        "job_id": ctx.job_id,
        "trigger": None if ctx.trigger is None else dataclasses.asdict(ctx.trigger),
        "awaited": ctx.awaited,
    }
    outcome = await pool.invoke(Invocation(handler, payload, context, timeout), _ContextHost(ctx))
    elapsed = (time.perf_counter() - started) * 1000
    if outcome.ok:
        return Attempt(True, result=outcome.value, duration_ms=elapsed)
    return Attempt(False, error=outcome.error, retryable=outcome.retryable, duration_ms=elapsed)
