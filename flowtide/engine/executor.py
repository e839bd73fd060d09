"""One job attempt: validate input, call the handler under its timeout, classify the outcome."""

from __future__ import annotations

import asyncio
import functools
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import pydantic

from flowtide._util.jsonutil import NotSerializable, dumps
from flowtide.engine.context import Context, SyncContext
from flowtide.engine.runs import validation_errors
from flowtide.registry import InputModel

__all__ = ["Attempt", "run_handler"]


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
