"""The node pool with several invocations in flight per child: dispatch, output attribution,
timeouts (cancel, or kill after the grace), crashes failing every invocation in flight."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flowtide.runtimes import Invocation, Pool, PoolOptions
from flowtide.runtimes.node import node_argv
from tests.runtimes._util import RecordingHost, assert_no_leftovers

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HANDLERS = {
    # Sleeps input.ms, prints a tagged line, reports how many ran at once in this child.
    "nap.mjs": """
let active = 0;
let peak = 0;
export default async function (input, ctx) {
  active += 1;
  peak = Math.max(peak, active);
  await new Promise((r) => setTimeout(r, input.ms));
  console.log(`done ${input.tag}`);
  console.error(`err ${input.tag}`);
  ctx.log.info('tagged', { tag: input.tag });
  active -= 1;
  return { tag: input.tag, pid: process.pid, peak };
}
""",
    "hang.mjs": """
export default (input, ctx) => new Promise((resolve) => {
  ctx.signal.addEventListener('abort', () => {
    globalThis.aborted = (globalThis.aborted || 0) + 1;
  });
});
""",
    "aborted.mjs": "export default async () => globalThis.aborted || 0;\n",
    "spin.mjs": "export default async () => { for (;;) {} };\n",
    "crash.mjs": """
export default async (input) => {
  await new Promise((r) => setTimeout(r, input.ms));
  process.kill(process.pid, 'SIGKILL');
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


def _pool(pools: list[Pool], **options: Any) -> Pool:
    pool = Pool("node", node_argv(), PoolOptions(**options))
    pools.append(pool)
    return pool


def inv(handler: str, value: Any = None, timeout: float | None = 10.0) -> Invocation:
    return Invocation(handler, value, {"run_id": "r", "step": "s"}, timeout)


async def test_one_child_runs_many_invocations_at_once_with_output_attributed(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=1)
    # The first print of a child switches on per-invocation tracking (see docs/protocol.md).
    first = RecordingHost()
    assert (await pool.invoke(inv(handlers["nap"], {"ms": 1, "tag": "w"}), first)).ok
    assert ("info", "done w", {"stream": "stdout"}) in first.logs
    hosts = [RecordingHost() for _ in range(20)]
    started = time.monotonic()
    outs = await asyncio.gather(
        *(pool.invoke(inv(handlers["nap"], {"ms": 300, "tag": i}), h) for i, h in enumerate(hosts))
    )
    elapsed = time.monotonic() - started
    assert all(o.ok for o in outs), outs
    assert len(pool.spawned) == 1 and {o.value["pid"] for o in outs} == set(pool.spawned)
    assert max(o.value["peak"] for o in outs) == 20  # all twenty were in flight together
    assert elapsed < 20 * 0.3 / 2, elapsed
    for i, host in enumerate(hosts):  # console output reached exactly its own invocation
        assert ("info", f"done {i}", {"stream": "stdout"}) in host.logs
        assert ("warning", f"err {i}", {"stream": "stderr"}) in host.logs
        assert ("info", "tagged", {"tag": i}) in host.logs
        assert len(host.logs) == 3, host.logs


async def test_max_inflight_bounds_each_child_and_load_spreads(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=2, max_inflight=3)
    outs = await asyncio.gather(
        *(
            pool.invoke(inv(handlers["nap"], {"ms": 150, "tag": i}), RecordingHost())
            for i in range(12)
        )
    )
    assert all(o.ok for o in outs)
    assert max(o.value["peak"] for o in outs) <= 3
    assert len(pool.spawned) == 2
    assert {o.value["pid"] for o in outs} == set(pool.spawned)  # both children got work


async def test_a_timeout_cancels_one_invocation_and_keeps_the_child(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=1, cancel_grace=2.0)
    hung = asyncio.ensure_future(pool.invoke(inv(handlers["hang"], timeout=0.3), RecordingHost()))
    other = pool.invoke(inv(handlers["nap"], {"ms": 600, "tag": "x"}), RecordingHost())
    hung_out, other_out = await asyncio.gather(hung, other)
    assert hung_out.error is not None and hung_out.error["type"] == "Timeout"
    assert "canceled" in hung_out.error["message"] and hung_out.retryable
    assert other_out.ok and other_out.value["pid"] == pool.spawned[0]
    aborted = await pool.invoke(inv(handlers["aborted"]), RecordingHost())
    assert aborted.value == 1  # the handler's ctx.signal was aborted
    assert len(pool.spawned) == 1


async def test_a_child_that_does_not_answer_the_cancel_is_killed_after_the_grace(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=1, cancel_grace=0.3)
    other = asyncio.ensure_future(
        pool.invoke(inv(handlers["nap"], {"ms": 5000, "tag": "x"}), RecordingHost())
    )
    await _in_flight(pool)
    started = time.monotonic()
    spin = await pool.invoke(inv(handlers["spin"], timeout=0.3), RecordingHost())
    assert time.monotonic() - started < 3
    assert spin.error is not None and spin.error["type"] == "Timeout"
    assert "was killed" in spin.error["message"]
    lost = await other
    assert lost.error is not None and lost.error["type"] == "ChildCrashed" and lost.retryable
    assert "did not stop at its timeout" in lost.error["message"]
    after = await pool.invoke(inv(handlers["nap"], {"ms": 1, "tag": "y"}), RecordingHost())
    assert after.ok and len(pool.spawned) == 2 and after.value["pid"] == pool.spawned[1]


async def test_a_crash_fails_every_invocation_in_flight_on_that_child(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=1)
    naps = [
        pool.invoke(inv(handlers["nap"], {"ms": 5000, "tag": i}), RecordingHost()) for i in range(3)
    ]
    crash = pool.invoke(inv(handlers["crash"], {"ms": 200}), RecordingHost())
    outs = await asyncio.wait_for(asyncio.gather(*naps, crash), 10)
    for out in outs:
        assert out.error is not None and out.error["type"] == "ChildCrashed" and out.retryable
        assert "killed by signal SIGKILL" in out.error["message"]
        assert "4 invocations in flight" in out.error["message"]
    after = await pool.invoke(inv(handlers["nap"], {"ms": 1, "tag": "z"}), RecordingHost())
    assert after.ok and len(pool.spawned) == 2


async def test_a_cancelled_caller_does_not_kill_a_child_that_answers_the_cancel(
    pools: list[Pool], handlers: dict[str, str]
) -> None:
    pool = _pool(pools, size=1)
    task = asyncio.ensure_future(pool.invoke(inv(handlers["hang"], timeout=60), RecordingHost()))
    await _in_flight(pool)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = await pool.invoke(inv(handlers["nap"], {"ms": 1, "tag": "k"}), RecordingHost())
    assert out.ok and out.value["pid"] == pool.spawned[0] and len(pool.spawned) == 1
    assert not pool.children[0].running  # the canceled invocation was answered and forgotten


async def _in_flight(pool: Pool, timeout: float = 10.0) -> None:
    """Wait until one of the pool's children has an invocation in flight."""
    deadline = time.monotonic() + timeout
    while not any(child.running for child in pool.children):
        assert time.monotonic() < deadline, "no invocation reached a child in time"
        await asyncio.sleep(0.005)
