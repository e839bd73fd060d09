"""The python-process pool with real child processes: calls, context requests, output capture,
errors, crashes, hangs, protocol violations, recycling, shutdown; no process is left behind."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowtide.runtimes import Invocation, Pool, PoolOptions
from flowtide.runtimes.pool import MEMORY_CHECK_INTERVAL, python_argv
from tests.runtimes._util import RecordingHost, assert_no_leftovers

H = "tests.runtimes._handlers"


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    p = Pool(
        "python-process",
        python_argv(),
        PoolOptions(size=2, heartbeat_interval=0.1, heartbeat_timeout=1.0, max_frame=1 << 20),
        env=_env(),
    )
    try:
        yield p
    finally:
        await p.stop()
        assert_no_leftovers(p.spawned)


def _env() -> dict[str, str]:
    import json
    import os

    return {**os.environ, "FLOWTIDE_CHILD_SYS_PATH": json.dumps(sys.path)}


def inv(name: str, value: Any = None, timeout: float | None = 10.0, **context: Any) -> Invocation:
    return Invocation(f"{H}:{name}", value, {"run_id": "r1", "step": name, **context}, timeout)


async def test_invocation_with_context_requests_and_output(pool: Pool) -> None:
    host = RecordingHost()
    host.state["n"] = 7
    out = await pool.invoke(inv("count", {"n": 3}, attempt=2), host)
    assert out.ok, out.error
    assert out.value["n"] == 3 and out.value["state"] == 3
    kinds = [k for k, _ in host.requests]
    assert kinds == ["state.set", "emit", "state.get"]
    assert host.requests[1][1]["name"] == "counted"
    assert ("info", "counting", {"n": 3}) in host.logs
    assert ("stdout", "hello from the child") in host.lines
    assert ("stderr", "a warning") in host.lines


async def test_children_are_reused_and_sync_handlers_get_blocking_ctx(pool: Pool) -> None:
    host = RecordingHost()
    host.state["n"] = 5
    out = await pool.invoke(inv("square", {}, attempt=3), host)
    assert out.ok and out.value == {"square": 25, "attempt": 3}
    first = await pool.invoke(inv("pid"), host)
    second = await pool.invoke(inv("pid"), host)
    assert first.value == second.value


async def test_handler_error_has_type_and_stack(pool: Pool) -> None:
    out = await pool.invoke(inv("fails"), RecordingHost())
    assert not out.ok and out.retryable
    assert out.error is not None
    assert out.error["type"] == "ValueError" and out.error["message"] == "bad value"
    assert 'raise ValueError("bad value")' in out.error["traceback"]


async def test_missing_handler_and_invalid_input_are_not_retried(pool: Pool) -> None:
    out = await pool.invoke(inv("nope"), RecordingHost())
    assert out.error is not None and out.error["type"] == "HandlerNotFound"
    assert not out.retryable


@pytest.mark.parametrize(
    ("handler", "arg", "words"),
    [
        ("exit_now", 3, "exited with code 3"),
        ("crash_once", "x", "killed by signal SIGKILL"),
    ],
)
async def test_a_crash_fails_only_the_attempt(
    pool: Pool, handler: str, arg: Any, words: str
) -> None:
    before = await pool.invoke(inv("pid"), RecordingHost())
    out = await pool.invoke(inv(handler, arg, attempt=1), RecordingHost())
    assert not out.ok and out.retryable and out.error is not None
    assert out.error["type"] == "ChildCrashed" and words in out.error["message"]
    after = await pool.invoke(inv("pid"), RecordingHost())
    assert after.ok
    assert before.value in pool.spawned and after.value in pool.spawned


async def test_a_hang_past_the_timeout_is_killed(pool: Pool) -> None:
    out = await pool.invoke(inv("sleep_forever", timeout=0.5), RecordingHost())
    assert out.error is not None and out.error["type"] == "Timeout"
    assert "killed" in out.error["message"]
    assert (await pool.invoke(inv("noop", 1), RecordingHost())).value == 1


async def test_a_child_without_heartbeats_is_killed(pool: Pool) -> None:
    out = await pool.invoke(inv("freeze", timeout=30), RecordingHost())
    assert out.error is not None and out.error["type"] == "ChildUnresponsive"


async def test_garbage_on_the_channel_fails_the_attempt(pool: Pool) -> None:
    out = await pool.invoke(inv("garbage"), RecordingHost())
    assert out.error is not None and out.error["type"] == "ProtocolError"
    assert "not JSON" in out.error["message"]


async def test_an_oversized_frame_fails_the_attempt(pool: Pool) -> None:
    out = await pool.invoke(inv("oversize", (1 << 20) + 10), RecordingHost())
    assert out.error is not None and out.error["type"] == "FrameTooLarge"
    # The child refuses to send an oversized result itself, with the same error type.
    out = await pool.invoke(inv("huge", 2 << 20), RecordingHost())
    assert out.error is not None and out.error["type"] == "FrameTooLarge"


async def test_recycled_after_max_jobs_and_above_the_memory_limit() -> None:
    options = PoolOptions(size=1, max_jobs=3, max_memory_mb=150)
    pool = Pool("python-process", python_argv(), options, env=_env())
    try:
        pids = [(await pool.invoke(inv("pid"), RecordingHost())).value for _ in range(7)]
        assert pids[0] == pids[1] == pids[2] != pids[3]
        assert pids[3] == pids[4] == pids[5] != pids[6]
        await asyncio.sleep(MEMORY_CHECK_INTERVAL + 0.05)  # memory is sampled at most this often
        grown = (await pool.invoke(inv("grow", 200), RecordingHost())).value
        assert (await pool.invoke(inv("pid"), RecordingHost())).value != grown
    finally:
        await pool.stop()
    assert_no_leftovers(pool.spawned)


async def test_size_bounds_concurrency(pool: Pool) -> None:
    outs = await asyncio.gather(*(pool.invoke(inv("burn", 100), RecordingHost()) for _ in range(4)))
    assert all(o.ok for o in outs)
    assert len(pool.spawned) == 2


async def test_version_mismatch_is_a_clear_non_retryable_error(tmp_path: Any) -> None:
    script = tmp_path / "old_child.py"
    script.write_text(
        "import os, json\n"
        "fd = int(os.environ['FLOWTIDE_PROTOCOL_FD_OUT'])\n"
        "os.write(fd, json.dumps({'type': 'hello', 'id': 'h', 'protocol': 99}).encode() + b'\\n')\n"
        "os.read(int(os.environ['FLOWTIDE_PROTOCOL_FD_IN']), 1000)\n"
    )
    pool = Pool("python-process", [sys.executable, str(script)], PoolOptions(size=1))
    try:
        out = await pool.invoke(inv("noop"), RecordingHost())
    finally:
        await pool.stop()
    assert out.error is not None and out.error["type"] == "VersionMismatch"
    assert "version 99" in out.error["message"] and not out.retryable
    assert_no_leftovers(pool.spawned)


async def test_stop_while_busy_kills_and_reaps(pool: Pool) -> None:
    task = asyncio.ensure_future(pool.invoke(inv("sleep_forever", timeout=60), RecordingHost()))
    await _in_flight(pool)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pool.stop()
    assert_no_leftovers(pool.spawned)


async def test_an_async_handler_past_its_timeout_is_canceled_and_the_child_kept(
    pool: Pool,
) -> None:
    before = await pool.invoke(inv("pid"), RecordingHost())
    out = await pool.invoke(inv("nap", 30, timeout=0.3), RecordingHost())
    assert out.error is not None and out.error["type"] == "Timeout"
    assert "canceled" in out.error["message"]
    after = await pool.invoke(inv("pid"), RecordingHost())
    assert before.value == after.value and pool.spawned == [before.value]


async def test_max_inflight_lets_one_child_run_async_handlers_together() -> None:
    options = PoolOptions(size=1, max_inflight=4)
    pool = Pool("python-process", python_argv(), options, env=_env())
    try:
        started = asyncio.get_running_loop().time()
        outs = await asyncio.gather(
            *(pool.invoke(inv("nap", 0.5), RecordingHost()) for _ in range(4))
        )
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await pool.stop()
    assert all(o.ok for o in outs) and len(pool.spawned) == 1
    assert elapsed < 1.9, elapsed  # together, not one after another
    assert_no_leftovers(pool.spawned)


async def _in_flight(pool: Pool, timeout: float = 10.0) -> None:
    """Wait until one of the pool's children has an invocation in flight."""
    deadline = time.monotonic() + timeout
    while not any(child.running for child in pool.children):
        assert time.monotonic() < deadline, "no invocation reached a child in time"
        await asyncio.sleep(0.005)
