"""The Python child: ``python -m flowtide.runtimes.python_child``.

It speaks protocol v1 (docs/protocol.md) on the fds named in its environment, imports each
handler's module by name (``module:qualname``) and calls it with the input and a context whose
calls are requests to the parent. ``async def`` handlers run on the child's event loop, plain
``def`` handlers in a thread (their ctx calls block). Heartbeats come from a thread of their own,
so CPU-bound handlers keep the child visibly alive.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import itertools
import json
import os
import platform
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from flowtide._util.jsonutil import NotSerializable, dumps
from flowtide.runtimes.protocol import (
    ENV_FD_IN,
    ENV_FD_OUT,
    ENV_MAX_FRAME,
    MAX_FRAME,
    PROTOCOL_VERSION,
    FrameDecoder,
    ProtocolError,
    encode,
    error_body,
)

T = TypeVar("T")
EXIT_VERSION_MISMATCH = 3
EXIT_PROTOCOL_ERROR = 4


class Channel:
    """Frames out (thread-safe, blocking writes) and requests to the parent."""

    def __init__(self, fd_in: int, fd_out: int, max_frame: int) -> None:
        self.fd_in, self.fd_out, self.max_frame = fd_in, fd_out, max_frame
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future[Any]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def send(self, message: dict[str, Any]) -> None:
        data = encode(message, self.max_frame)
        with self.lock:
            view = memoryview(data)
            while view:
                n = os.write(self.fd_out, view)
                view = view[n:]

    async def request(self, type: str, **fields: Any) -> Any:
        assert self.loop is not None
        req_id = f"c{next(self.ids)}"
        fut = self.loop.create_future()
        self.pending[req_id] = fut
        try:
            self.send({"type": type, "id": req_id, **fields})
            return await fut
        finally:
            self.pending.pop(req_id, None)


class ContextError(Exception):
    """A context request the parent refused (the parent's error type is in ``type``)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", "")))
        self.type = str(body.get("type", "ContextError"))


class _Log:
    def __init__(self, channel: Channel, invoke: str) -> None:
        self._channel, self._invoke = channel, invoke

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        msg = {"type": "log", "invoke": self._invoke, "level": level, "message": str(message)}
        try:
            dumps(fields)
        except NotSerializable:
            fields = {k: repr(v) for k, v in fields.items()}
        self._channel.send({**msg, "fields": fields})

    def debug(self, message: str, **fields: Any) -> None:
        self._log("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._log("error", message, fields)


def _seconds(ttl: Any) -> Any:
    return ttl.total_seconds() if isinstance(ttl, dt.timedelta) else ttl


class _State:
    def __init__(self, call: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        self._call = call

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._call("state.get", key=key, default=default)

    async def set(self, key: str, value: Any, ttl: Any = None) -> None:
        await self._call("state.set", key=key, value=value, ttl=_seconds(ttl))

    async def delete(self, key: str) -> None:
        await self._call("state.delete", key=key)

    async def items(self) -> dict[str, Any]:
        items: dict[str, Any] = await self._call("state.items")
        return items


class _Flows:
    def __init__(self, call: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        self._call = call

    async def start(self, flow: str, input: Any = None) -> str:
        return str(await self._call("flows.start", flow=flow, input=input))

    async def cancel(self, run_id: str) -> None:
        await self._call("flows.cancel", run_id=run_id)


class ChildContext:
    """The ``ctx`` of an ``async def`` handler in a child: the same names as the native one."""

    def __init__(self, channel: Channel, invoke: str, context: dict[str, Any]) -> None:
        self._channel, self._invoke = channel, invoke
        self.run_id: str | None = context.get("run_id")
        self.flow: str | None = context.get("flow")
        self.step: str = context.get("step", "")
        self.attempt: int = int(context.get("attempt", 1))
        self.job_id: str = context.get("job_id", "")
        self.trigger: Any = context.get("trigger")
        self.awaited: Any = context.get("awaited")
        self.log = _Log(channel, invoke)
        self.state = _State(self._call)
        self.flows = _Flows(self._call)

    async def _call(self, type: str, **fields: Any) -> Any:
        return await self._channel.request(type, invoke=self._invoke, **fields)

    async def emit(self, name: str, payload: Any = None) -> None:
        await self._call("emit", name=name, payload=payload)


class _Blocking:
    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            coro = method(*args, **kwargs)
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

        return call


class SyncChildContext:
    """The ``ctx`` of a plain ``def`` handler: the same names, blocking calls."""

    def __init__(self, ctx: ChildContext, loop: asyncio.AbstractEventLoop) -> None:
        self.run_id, self.flow, self.step = ctx.run_id, ctx.flow, ctx.step
        self.attempt, self.job_id = ctx.attempt, ctx.job_id
        self.trigger, self.awaited, self.log = ctx.trigger, ctx.awaited, ctx.log
        self.state = _Blocking(ctx.state, loop)
        self.flows = _Blocking(ctx.flows, loop)
        self._emit = _Blocking(ctx, loop)

    def emit(self, name: str, payload: Any = None) -> None:
        self._emit.emit(name, payload)


class HandlerNotFound(Exception):
    pass


_handlers: dict[str, tuple[Callable[..., Any], bool, Any, int]] = {}


def resolve(ref: str) -> tuple[Callable[..., Any], bool, Any, int]:
    """``module:qualname`` -> (function, is_async, input adapter, arity); cached."""
    found = _handlers.get(ref)
    if found is not None:
        return found
    from flowtide.registry import _input_model

    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise HandlerNotFound(f"cannot import module {module_name!r}: {exc}") from exc
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise HandlerNotFound(f"module {module_name!r} has no attribute {qualname!r}")
        obj = getattr(obj, part)
    fn = getattr(obj, "handler", obj)  # a StepDef/FunctionDef wraps the function
    if not callable(fn):
        raise HandlerNotFound(f"{ref} is not callable")
    model = _input_model(fn, {})
    found = (fn, asyncio.iscoroutinefunction(fn), model.adapter, model.arity)
    _handlers[ref] = found
    return found


class Runner:
    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop) -> None:
        self.channel, self.loop = channel, loop
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.threads = ThreadPoolExecutor(4, "flowtide-child")
        self.done = asyncio.Event()
        self.in_threads: set[str] = set()  # invocations running a plain ``def`` in a thread

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("result", "error"):
            fut = self.channel.pending.get(str(message.get("id")))
            if fut is not None and not fut.done():
                if kind == "result":
                    fut.set_result(message.get("value"))
                else:
                    fut.set_exception(ContextError(message.get("error") or {}))
        elif kind == "invoke":
            inv_id = str(message["id"])
            self.tasks[inv_id] = self.loop.create_task(self.invoke(inv_id, message))
        elif kind == "cancel":
            inv_id = str(message.get("id"))
            task = self.tasks.get(inv_id)
            # A thread cannot be interrupted: a plain ``def`` handler ignores the cancel, so the
            # parent kills the child after its grace instead of leaving the thread running.
            if task is not None and inv_id not in self.in_threads:
                task.cancel()
        elif kind == "shutdown":
            self.done.set()
        elif message.get("id") is not None:
            body = error_body("UnknownRequest", f"unknown request type {kind!r}")
            self.channel.send({"type": "error", "id": message["id"], "error": body})

    async def invoke(self, inv_id: str, message: dict[str, Any]) -> None:
        try:
            value = await self._call(inv_id, message)
            reply: dict[str, Any] = {"type": "result", "id": inv_id, "value": value}
            try:
                dumps(value)
            except NotSerializable as exc:
                text = f"the handler returned a value that is not JSON-serializable: {exc}"
                body = {**error_body("NotSerializable", text), "retryable": False}
                reply = {"type": "error", "id": inv_id, "error": body}
        except asyncio.CancelledError:
            body = error_body("Canceled", "the invocation was canceled")
            reply = {"type": "error", "id": inv_id, "error": body}
        except HandlerNotFound as exc:
            body = {**error_body("HandlerNotFound", str(exc)), "retryable": False}
            reply = {"type": "error", "id": inv_id, "error": body}
        except Exception as exc:
            stack = "".join(traceback.format_exception(exc))
            body = error_body(type(exc).__name__, str(exc) or type(exc).__name__, stack)
            reply = {"type": "error", "id": inv_id, "error": body}
        finally:
            self.tasks.pop(inv_id, None)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # output before the result reaches the parent first
        try:
            self.channel.send(reply)
        except ProtocolError as exc:
            body = error_body(exc.type, str(exc))
            self.channel.send({"type": "error", "id": inv_id, "error": body})

    async def _call(self, inv_id: str, message: dict[str, Any]) -> Any:
        fn, is_async, adapter, arity = resolve(str(message["handler"]))
        payload = message.get("input")
        if adapter is not None:
            payload = adapter.validate_python(payload)
        ctx = ChildContext(self.channel, inv_id, message.get("context") or {})
        if is_async:
            result = await fn(*((), (payload,), (payload, ctx))[arity])
        else:
            sync_ctx = SyncChildContext(ctx, self.loop)
            args = ((), (payload,), (payload, sync_ctx))[arity]
            self.in_threads.add(inv_id)
            try:
                result = await self.loop.run_in_executor(self.threads, lambda: fn(*args))
            finally:
                self.in_threads.discard(inv_id)
        dump = getattr(result, "model_dump", None)
        return dump(mode="json") if callable(dump) else result


def _reader(channel: Channel, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
    decoder = FrameDecoder(channel.max_frame)
    while True:
        try:
            chunk = os.read(channel.fd_in, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            os._exit(0)  # the parent is gone: nothing can receive a result any more
        try:
            frames = decoder.feed(chunk)
        except ProtocolError as exc:
            print(f"flowtide child: protocol error from the parent: {exc}", file=sys.stderr)
            os._exit(EXIT_PROTOCOL_ERROR)
        for message in frames:
            loop.call_soon_threadsafe(runner.dispatch, message)


def _heartbeats(channel: Channel, interval: float) -> None:
    beat = {"type": "heartbeat"}
    while True:
        threading.Event().wait(interval)
        try:
            channel.send(beat)
        except OSError:
            os._exit(0)


async def _main(fd_in: int, fd_out: int, max_frame: int) -> None:
    loop = asyncio.get_running_loop()
    channel = Channel(fd_in, fd_out, max_frame)
    channel.loop = loop
    runner = Runner(channel, loop)
    threading.Thread(target=_reader, args=(channel, runner, loop), daemon=True).start()
    hello = {
        "protocol": PROTOCOL_VERSION,
        "runtime": "python",
        "runtime_version": platform.python_version(),
        "pid": os.getpid(),
        "sdk": "flowtide",
        "capabilities": ["invoke", "cancel", "state", "emit", "flows", "log", "concurrent"],
    }
    try:
        welcome = await channel.request("hello", **hello)
    except ContextError as exc:
        print(f"flowtide child: the parent refused the handshake: {exc}", file=sys.stderr)
        os._exit(EXIT_VERSION_MISMATCH if exc.type == "VersionMismatch" else EXIT_PROTOCOL_ERROR)
    channel.max_frame = int(welcome.get("max_frame", max_frame))
    interval = float(welcome.get("heartbeat_ms", 1000)) / 1000
    threading.Thread(target=_heartbeats, args=(channel, interval), daemon=True).start()
    await runner.done.wait()


def main() -> None:
    fd_in, fd_out = int(os.environ[ENV_FD_IN]), int(os.environ[ENV_FD_OUT])
    max_frame = int(os.environ.get(ENV_MAX_FRAME, MAX_FRAME))
    extra = json.loads(os.environ.get("FLOWTIDE_CHILD_SYS_PATH", "[]"))
    sys.path[:0] = [p for p in extra if p not in sys.path]
    if isinstance(sys.stdout, __import__("io").TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    asyncio.run(_main(fd_in, fd_out, max_frame))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
