"""How a pool places invocations on its children (docs/protocol.md, Pools, Dispatch): packed onto
the busiest child with room at low load, spread over the children when they use CPU (or when
their CPU use cannot be read), and handed to the warm standby when a child is recycled."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from flowtide.runtimes import Invocation, Outcome, Pool, PoolOptions
from flowtide.runtimes.child import Child
from flowtide.runtimes.node import node_argv
from flowtide.runtimes.pool import python_argv
from tests.runtimes._util import RecordingHost, assert_no_leftovers, process_state

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HANDLERS = {
    "pid.mjs": "export default async (input) => ({ pid: process.pid, tag: input?.tag });\n",
    # CPU-bound: a busy loop of input.ms milliseconds.
    "burn.mjs": """
export default async (input) => {
  const end = Date.now() + input.ms;
  while (Date.now() < end) {}
  return { pid: process.pid };
};
""",
}


@pytest.fixture
def handlers(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, source in HANDLERS.items():
        (tmp_path / name).write_text(source)
        out[name.removesuffix(".mjs")] = str(tmp_path / name)
    return out


@pytest.fixture
async def pools() -> AsyncIterator[list[Pool]]:
    made: list[Pool] = []
    try:
        yield made
    finally:
        for pool in made:
            await pool.stop()
        for pool in made:
            assert_no_leftovers(pool.spawned)


def _pool(pools: list[Pool], runtime: str, **options: Any) -> Pool:
    if runtime == "node":
        pool = Pool("node", node_argv(), PoolOptions(**options))
    else:
        env = {**os.environ, "FLOWTIDE_CHILD_SYS_PATH": json.dumps(sys.path)}
        pool = Pool("python-process", python_argv(), PoolOptions(**options), env=env)
    pools.append(pool)
    return pool


def inv(handler: str, value: Any = None) -> Invocation:
    return Invocation(handler, value, {"run_id": "r", "step": "s"}, 10.0)


def _pid(out: Outcome) -> int:
    assert out.ok, out.error
    value = out.value
    return int(value["pid"] if isinstance(value, dict) else value)


async def _burst(pool: Pool, make: Callable[[int], Invocation], n: int) -> list[Outcome]:
    """``n`` invocations submitted at once (dispatched in this order)."""
    return list(await asyncio.gather(*(pool.invoke(make(i), RecordingHost()) for i in range(n))))


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


# A pid handler per runtime; python-process gets room for several invocations per child so that
# packing is possible at all (its default max_inflight is 1).
PID_POOLS = [
    pytest.param("node", {}, id="node", marks=needs_node),
    pytest.param("python-process", {"max_inflight": 16}, id="python-process"),
]


def _pid_handler(runtime: str, handlers: dict[str, str]) -> str:
    return handlers["pid"] if runtime == "node" else "tests.runtimes._handlers:pid"


@pytest.mark.parametrize(("runtime", "options"), PID_POOLS)
async def test_a_burst_at_low_load_is_packed_onto_one_child(
    pools: list[Pool], handlers: dict[str, str], runtime: str, options: dict[str, Any]
) -> None:
    pool = _pool(pools, runtime, size=2, **options)
    handler = _pid_handler(runtime, handlers)
    # Warm up first: a burst into an empty pool starts both children at once, which is not
    # the dispatch under test.
    first = _pid(await pool.invoke(inv(handler), RecordingHost()))
    burst = await _burst(pool, lambda i: inv(handler, {"tag": i}), 10)
    assert {_pid(o) for o in burst} == {first}
    # Packing onto a busy child started the second one in the background, as a standby...
    await _until(lambda: len(pool.children) == 2, "the standby child")
    assert len(pool.spawned) == 2
    # ...which a burst still does not wake while the first child has room.
    burst = await _burst(pool, lambda i: inv(handler, {"tag": i}), 10)
    assert {_pid(o) for o in burst} == {first}
    assert not pool.spreading


@needs_node
async def test_cpu_bound_load_spreads_over_both_children(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, "node", size=2)
    first = _pid(await pool.invoke(inv(handlers["burn"], {"ms": 1}), RecordingHost()))
    pids: set[int] = set()
    errors: list[Any] = []
    deadline = time.monotonic() + 5.0

    async def lane() -> None:  # one of 10 invocations kept in flight
        while len(pids) < 2 and not errors and time.monotonic() < deadline:
            out = await pool.invoke(inv(handlers["burn"], {"ms": 20}), RecordingHost())
            if out.ok:
                pids.add(out.value["pid"])
            else:
                errors.append(out.error)

    started = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(10)))
    assert not errors
    # 10 in flight fit in one child (max_inflight 32): only spreading reaches the second one.
    assert pids == set(pool.spawned) and first in pids and len(pids) == 2, pids
    assert pool.spreading
    assert time.monotonic() - started < 3.0  # CPU is sampled every 0.25 s


@needs_node
async def test_a_recycled_child_hands_over_to_the_standby_without_losing_invocations(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    max_jobs = 4
    pool = _pool(pools, "node", size=2, max_jobs=max_jobs)
    tags = itertools.count()
    outs = [await pool.invoke(inv(handlers["pid"], {"tag": next(tags)}), RecordingHost())]
    outs += await _burst(pool, lambda _: inv(handlers["pid"], {"tag": next(tags)}), 2)
    first = _pid(outs[0])
    await _until(lambda: len(pool.children) == 2, "the standby child")
    standby = pool.spawned[1]
    # Bursts of 3 cross each child's max_jobs with invocations still in flight on it.
    while len(outs) < 22:
        outs += await _burst(pool, lambda _: inv(handlers["pid"], {"tag": next(tags)}), 3)
    pids = [_pid(o) for o in outs]  # every invocation succeeded...
    assert sorted(o.value["tag"] for o in outs) == list(range(len(outs)))  # ...none was lost
    # The first child ran exactly max_jobs, then the standby (warm before the recycling) took
    # over; every child after it was recycled at max_jobs too.
    assert pids[:max_jobs] == [first] * max_jobs
    assert pids[max_jobs : 2 * max_jobs] == [standby] * max_jobs
    runs = [len(list(group)) for _, group in itertools.groupby(pids)]
    assert all(run == max_jobs for run in runs[:-1]), pids
    assert max(Counter(pids).values()) == max_jobs and set(pids) <= set(pool.spawned)
    assert not pool.spreading
    # A recycled child exits (and is reaped) once its last invocation is answered.
    await _until(lambda: process_state(first) is None, "the recycled child to exit")
    await _until(lambda: process_state(standby) is None, "the recycled standby to exit")


async def test_without_cpu_figures_the_pool_spreads(
    pools: list[Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/PID/stat unreadable: Child.cpu_seconds() reports -1 ("unknown"), as on a system
    # without /proc. The pool's decision from that figure is what is tested.
    monkeypatch.setattr(Child, "cpu_seconds", lambda self: -1.0)
    # max_jobs=0: the bursts of no-ops before the first CPU sample must not recycle a child.
    pool = _pool(pools, "python-process", size=2, max_inflight=16, max_jobs=0)
    handler = "tests.runtimes._handlers:pid"
    _pid(await pool.invoke(inv(handler), RecordingHost()))
    deadline = time.monotonic() + 5.0
    # Quick no-ops, which a pool with CPU figures packs onto one child (see above): spread.
    while True:
        pids = {_pid(o) for o in await _burst(pool, lambda _: inv(handler), 4)}
        if len(pids) == 2:
            break
        assert time.monotonic() < deadline, "a burst never reached both children"
    assert pool.spreading and pids == set(pool.spawned) and len(pool.spawned) == 2


@pytest.mark.parametrize(("runtime", "options"), PID_POOLS)
async def test_stopping_while_the_standby_starts_leaves_no_process(
    handlers: dict[str, str], runtime: str, options: dict[str, Any]
) -> None:
    made: list[Pool] = []
    pool = _pool(made, runtime, size=2, **options)
    handler = _pid_handler(runtime, handlers)
    try:
        await pool.invoke(inv(handler), RecordingHost())
        await _burst(pool, lambda _: inv(handler), 2)  # packs onto a busy child: a standby starts
        assert len(pool.children) == 1  # the standby is still starting...
    finally:
        await pool.stop()  # ...when the pool stops: it is killed and reaped wherever it was
    assert_no_leftovers(pool.spawned)
