"""A pool of warm child processes per runtime, and the set of pools a worker owns.

A pool has up to ``size`` children, each running up to ``max_inflight`` invocations at once
(default 32 for node, whose handlers are async; 1 for python-process, whose handlers are usually
CPU-bound). Invocations are packed onto the busiest child with room, or spread over the children
when the load is CPU-bound (see :class:`Pool`). A child is reused until it has run ``max_jobs``
jobs or its resident memory exceeds ``max_memory_mb``; then it is retired (no new invocations;
it exits once its last one is done) and a replacement is started in the background, so the pool
stays warm. A child that crashed, hung or broke the protocol is never reused: the next
invocation gets a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowtide.config import RuntimesConfig
from flowtide.runtimes.child import Child, ChildFailed, Host, Invocation, Outcome
from flowtide.runtimes.protocol import MAX_FRAME

__all__ = ["Pool", "PoolOptions", "RuntimePools", "options_from_config", "python_argv"]

ENV_PYTHONPATH = "FLOWTIDE_CHILD_SYS_PATH"


@dataclass(slots=True)
class PoolOptions:
    size: int = field(default_factory=lambda: max(2, min(8, os.cpu_count() or 2)))
    max_jobs: int | None = None  # recycle a child after this many jobs (0: never; None: default)
    max_memory_mb: float = 512.0  # recycle a child whose RSS is above this (0: never)
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 10.0
    start_timeout: float = 20.0
    shutdown_grace: float = 2.0
    max_frame: int = MAX_FRAME
    max_inflight: int | None = None  # invocations at once per child (None: the runtime default)
    cancel_grace: float = 1.0  # after a timeout's cancel, how long before the child is killed


# Resident memory (per child) and CPU use (per pool) are sampled after a job, at most this often
# (reading /proc/PID/statm costs tens of microseconds for a Node process).
MEMORY_CHECK_INTERVAL = 0.25
# The CPU load of a pool's children (in cores, over the last sampling interval) above which the
# pool spreads invocations over its children instead of packing them, and below which it packs
# again (hysteresis: spreading itself costs some CPU).
SPREAD_CPU = 0.5
PACK_CPU = 0.25
DEFAULT_MAX_INFLIGHT = {"node": 32, "python-process": 1}
# Python children are recycled sooner (C extensions and caches leak); a Node child restart costs
# ~50 ms of CPU, which at 1,000 jobs would be a large share of a short handler's cost.
DEFAULT_MAX_JOBS = {"node": 10_000, "python-process": 1000}


def options_from_config(config: RuntimesConfig) -> dict[str, PoolOptions]:
    """The pool options of a worker from the ``[runtimes]`` config section."""
    out = {}
    for runtime, size, inflight in (
        ("python-process", config.python_process_pool, config.python_process_max_inflight),
        ("node", config.node_pool, config.node_max_inflight),
    ):
        options = PoolOptions(
            max_jobs=config.max_jobs_per_child,
            max_memory_mb=float(config.max_memory_mb),
            max_inflight=inflight,
            cancel_grace=config.cancel_grace,
        )
        if size > 0:
            options.size = size
        out[runtime] = options
    return out


def python_argv() -> list[str]:
    return [sys.executable, "-m", "flowtide.runtimes.python_child"]


class Pool:
    """Warm children of one runtime; ``invoke`` never raises except on cancellation.

    An invocation goes to the busiest child that has room (fewer than its capacity in flight):
    packing answers a burst from one child, in one pipe write each way, instead of waking several
    processes for a few invocations each. When the load is CPU-bound (the children together used
    more than ``SPREAD_CPU`` of a core since the last sample; or their CPU use cannot be read),
    it is spread instead: the invocation goes to the least-loaded child, and while that one is
    busy and the pool has fewer than ``size`` children, a new one is started for it, so the load
    spreads over ``size`` processes. A pool that packs onto a busy child starts its other
    children in the background, as warm standbys (for CPU-bound load, and recycled children).
    """

    def __init__(
        self,
        runtime: str,
        argv: Sequence[str],
        options: PoolOptions | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.runtime, self.argv = runtime, list(argv)
        self.options = options or PoolOptions()
        self.max_inflight = self.options.max_inflight or DEFAULT_MAX_INFLIGHT.get(runtime, 1)
        max_jobs = self.options.max_jobs
        self.max_jobs = DEFAULT_MAX_JOBS.get(runtime, 1000) if max_jobs is None else max_jobs
        self.env, self.cwd = env, cwd
        self.spawned: list[int] = []  # every pid this pool started (tests check none remains)
        self._children: list[Child] = []
        self._starting = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._background: set[asyncio.Task[None]] = set()  # children being stopped
        self._spares: set[asyncio.Task[None]] = set()  # replacements being started
        self._stopping = False
        self.spreading = False  # the load is CPU-bound: spread it instead of packing it
        self._cpu_sampled = time.monotonic()

    def __repr__(self) -> str:
        load = sum(c.load for c in self._children)
        return f"Pool({self.runtime!r}, children={len(self._children)}, in_flight={load})"

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    async def _spawn(self) -> Child:
        o = self.options
        child = Child(
            self.runtime,
            self.argv,
            env=self.env,
            cwd=self.cwd,
            max_frame=o.max_frame,
            heartbeat_interval=o.heartbeat_interval,
            heartbeat_timeout=o.heartbeat_timeout,
            start_timeout=o.start_timeout,
            max_inflight=self.max_inflight,
            cancel_grace=o.cancel_grace,
        )
        try:
            await child.start()
        except asyncio.CancelledError:
            # Canceled (the pool stopping during a standby's start) after the process was
            # created but before start() guards it: kill and reap it here.
            await child.kill()
            raise
        finally:
            if child.pid:
                self.spawned.append(child.pid)
        return child

    async def invoke(self, inv: Invocation, host: Host) -> Outcome:
        child = self._pick()
        if child is None:
            try:
                child = await self._acquire()
            except ChildFailed as exc:
                return exc.outcome()
        try:
            return await child.invoke(inv, host)
        finally:
            self._release(child)

    def _pick(self) -> Child | None:
        """The child for the next invocation, or None if the pool should grow first (or has no
        room); drops dead children."""
        busiest: Child | None = None  # packing: the usable child with the most in flight
        least: Child | None = None  # spreading: the usable child with the fewest in flight
        busiest_load = least_load = 0
        dead: list[Child] | None = None
        max_jobs = self.max_jobs
        for child in self._children:
            load = len(child.running)
            if not child.alive:
                if not load:
                    dead = [*(dead or ()), child]
                continue
            if (
                load >= child.capacity
                or child.retiring
                or (max_jobs > 0 and child.jobs >= max_jobs)
            ):
                continue
            if busiest is None or load > busiest_load:
                busiest, busiest_load = child, load
            if least is None or load < least_load:
                least, least_load = child, load
        for child in dead or ():
            self._drop(child, child.kill())  # it died while idle: reap it
        if self._stopping:
            return None
        can_grow = len(self._children) + self._starting < max(1, self.options.size)
        if busiest is not None and not self.spreading:
            if busiest_load and can_grow:
                self._grow()  # a warm standby, started in the background
            return busiest
        if least is None or (least_load and can_grow):
            return None
        return least

    async def _acquire(self) -> Child:
        size = max(1, self.options.size)
        while True:
            if self._stopping:
                raise ChildFailed("WorkerStopping", f"the {self.runtime} pool is stopping")
            best = self._pick()
            if best is not None:
                return best
            can_grow = len(self._children) + self._starting < size
            if can_grow:
                self._starting += 1
                try:
                    child = await self._spawn()
                finally:
                    self._starting -= 1
                    self._notify()
                if self._stopping:
                    await child.kill()
                    continue
                self._children.append(child)
                return child
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _release(self, child: Child) -> None:
        o = self.options
        if self._stopping or not child.alive:
            if not child.running:
                self._drop(child, child.kill())  # reap it (a no-op once the pool dropped it)
        else:
            worn = self.max_jobs > 0 and child.jobs >= self.max_jobs
            now = time.monotonic()
            if now - self._cpu_sampled >= MEMORY_CHECK_INTERVAL:
                self._sample_cpu(now)
            if (
                not worn
                and o.max_memory_mb > 0
                and now - child.rss_checked >= MEMORY_CHECK_INTERVAL
            ):
                child.rss_checked = now
                worn = child.rss_mb() > o.max_memory_mb
            if worn and not child.retiring:
                child.retiring = True
                self._grow(replacing=1)
            if child.retiring and not child.running:
                self._drop(child, child.shutdown(o.shutdown_grace))
        if self._waiters:
            self._notify()

    def _sample_cpu(self, now: float) -> None:
        """Decide between packing and spreading from the children's CPU use since the last
        sample (a pool-wide figure: it does not depend on how invocations were placed)."""
        used = 0.0
        for child in self._children:
            if not child.alive:
                continue
            delta = child.cpu_delta()
            if delta < 0:  # unknown (no /proc): spread, as if CPU-bound
                used = float("inf")
                break
            used += delta
        load = used / (now - self._cpu_sampled)
        self._cpu_sampled = now
        self.spreading = load > (PACK_CPU if self.spreading else SPREAD_CPU)

    def _drop(self, child: Child, ending: Coroutine[Any, Any, None]) -> None:
        if child in self._children:
            self._children.remove(child)
            self._run(ending, self._background)
        else:
            ending.close()

    def _run(self, coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _grow(self, replacing: int = 0) -> None:
        """Start a child in the background (``replacing``: children that are retiring)."""
        size = max(1, self.options.size)
        if self._stopping or len(self._children) - replacing + self._starting >= size:
            return
        self._starting += 1

        async def spare() -> None:
            try:
                child = await self._spawn()
            except ChildFailed:
                return
            finally:
                self._starting -= 1
                self._notify()
            if self._stopping:
                await child.kill()
            else:
                self._children.append(child)
                self._notify()

        self._run(spare(), self._spares)

    async def stop(self) -> None:
        """Stop every child: idle ones are asked to exit, busy ones are killed. No zombies."""
        self._stopping = True
        self._notify()
        for task in list(self._spares):
            task.cancel()
        await asyncio.gather(*self._spares, return_exceptions=True)
        children, self._children = self._children, []
        await asyncio.gather(
            *(c.kill() if c.running else c.shutdown(self.options.shutdown_grace) for c in children),
            return_exceptions=True,
        )
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


Factory = Callable[[str, PoolOptions], Pool]


class RuntimePools:
    """The pools of one worker, started lazily on first use and stopped with the worker."""

    def __init__(
        self, options: dict[str, PoolOptions] | None = None, cwd: str | None = None
    ) -> None:
        self.options = options or {}
        self.cwd = cwd
        self._pools: dict[str, Pool] = {}

    def get(self, runtime: str, ts: bool = False) -> Pool:
        key = f"{runtime}+ts" if ts else runtime
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._create(runtime, ts)
        return pool

    def _create(self, runtime: str, ts: bool) -> Pool:
        options = self.options.get(runtime) or PoolOptions()
        if runtime == "python-process":
            env = dict(os.environ)
            env[ENV_PYTHONPATH] = json.dumps(sys.path)
            return Pool(runtime, python_argv(), options, env=env, cwd=self.cwd)
        if runtime == "node":
            from flowtide.runtimes.node import node_argv

            return Pool(runtime, node_argv(ts=ts, cwd=self.cwd), options, cwd=self.cwd)
        raise ValueError(f"unknown runtime {runtime!r}")

    @property
    def pools(self) -> list[Pool]:
        return list(self._pools.values())

    async def stop(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(p.stop() for p in pools), return_exceptions=True)
