"""Handlers run by python-process children in tests (importable by module name)."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from pydantic import BaseModel

from flowtide import Context, Flow, function

procs = Flow("procs")


class Numbers(BaseModel):
    n: int


@procs.entry(runtime="python-process", emits=["counted"])
async def count(data: Numbers, ctx: Context) -> dict[str, Any]:
    await ctx.state.set("n", data.n)
    ctx.log.info("counting", n=data.n)
    print("hello from the child")
    print("a warning", file=sys.stderr)
    await ctx.emit("counted", {"n": data.n})
    return {"n": data.n, "pid": os.getpid(), "state": await ctx.state.get("n")}


@procs.step(subscribes=["counted"], runtime="python-process")
def square(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    n = ctx.state.get("n")
    ctx.state.set("square", n * n)
    ctx.emit("squared", {"n": n * n})
    return {"square": n * n, "attempt": ctx.attempt}


@function(runtime="python-process")
def burn(ms: int) -> int:
    """CPU-bound: a busy loop for ``ms`` milliseconds."""
    end = time.perf_counter() + ms / 1000
    spins = 0
    while time.perf_counter() < end:
        spins += 1
    return spins


@function(runtime="python-process", retries=1)
def crash_once(marker: str, ctx: Any) -> dict[str, Any]:
    """Kills its own process on the first attempt; succeeds on the retry."""
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"attempt": ctx.attempt, "pid": os.getpid()}


@function(runtime="python-process")
def exit_now(code: int) -> None:
    os._exit(code)


@function(runtime="python-process", timeout="1s")
def sleep_forever(_: Any) -> None:
    time.sleep(3600)


@function(runtime="python-process")
def freeze(_: Any) -> None:
    """Stops the whole process: no heartbeats any more."""
    os.kill(os.getpid(), signal.SIGSTOP)


@function(runtime="python-process")
def garbage(_: Any) -> None:
    """Writes garbage on the protocol channel."""
    os.write(int(os.environ["FLOWTIDE_PROTOCOL_FD_OUT"]), b"this is not json\n")
    time.sleep(30)


@function(runtime="python-process")
def huge(size: int) -> str:
    return "x" * size


@function(runtime="python-process")
def fails(_: Any) -> None:
    raise ValueError("bad value")


@function(runtime="python-process")
def noop(value: Any) -> Any:
    return value


@function(runtime="python-process")
async def pid(_: Any) -> int:
    return os.getpid()


@function(runtime="python-process")
def grow(mb: int) -> int:
    global _ballast
    _ballast = bytearray(mb * 1024 * 1024)
    return os.getpid()


_ballast = bytearray()


@function(runtime="python-process")
def oversize(size: int) -> None:
    """Writes ``size`` bytes without a newline on the protocol channel."""
    os.write(int(os.environ["FLOWTIDE_PROTOCOL_FD_OUT"]), b"[" * size)
    time.sleep(30)


@function(runtime="python-process")
async def nap(seconds: float) -> int:
    """Async: sleeps without blocking the child's loop (several can run in one child)."""
    import asyncio

    await asyncio.sleep(seconds)
    return os.getpid()
