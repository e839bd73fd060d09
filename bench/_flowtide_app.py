"""The flowtide side of the benchmark workloads: the same no-op work the peers run."""

from __future__ import annotations

import time
from typing import Any

from flowtide import Context, Flow, function


@function(queue="bench")
async def noop(i: int, ctx: Context) -> int:
    return i


chain3 = Flow("chain3", queue="bench")


@chain3.entry()
async def step1(run: int, ctx: Context) -> dict[str, int]:
    return {"run": run, "seq": 1}


@chain3.step(subscribes=["step:step1"])
async def step2(prev: dict[str, int], ctx: Context) -> dict[str, int]:
    return {"run": prev["run"], "seq": prev["seq"] + 1}


@chain3.step(subscribes=["step:step2"])
async def step3(prev: dict[str, int], ctx: Context) -> dict[str, int]:
    return {"run": prev["run"], "seq": prev["seq"] + 1}


latency = Flow("latency", queue="bench")


@latency.entry()
async def lat1(run: int, ctx: Context) -> dict[str, float]:
    return {"t1_end": time.perf_counter()}


@latency.step(subscribes=["step:lat1"])
async def lat2(prev: dict[str, float], ctx: Context) -> dict[str, float]:
    return {"gap_ms": (time.perf_counter() - prev["t1_end"]) * 1000.0}


state_probe = Flow("state_probe", queue="bench")


@state_probe.entry()
async def put(n: int, ctx: Context) -> int:
    await ctx.state.set("key", {"value": "x" * 64})
    return n


@state_probe.step(subscribes=["step:put"])
async def get_many(n: int, ctx: Context) -> list[float]:
    timings: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        value: Any = await ctx.state.get("key")
        timings.append((time.perf_counter() - t0) * 1000.0)
        assert value is not None
    return timings
