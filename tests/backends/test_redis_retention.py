"""Redis retention (issue 3, point 3): finished jobs kept for N and for an age, ended runs
expire with their history, so memory stays bounded under a steady load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Job, JobUpdate, Transition
from flowtide.backends.redis import RedisBackend
from flowtide.events import NewEvent, RunRecord
from tests import _backend_redis


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[object]:
    reason = _backend_redis.skip()
    if reason:
        pytest.skip(reason)
    urls: list[str] = []
    opened: list[RedisBackend] = []

    async def factory(query: str) -> RedisBackend:
        url = f"{_backend_redis.url(tmp_path)}&{query}"
        urls.append(url)
        backend = create_backend(url)
        assert isinstance(backend, RedisBackend)
        await backend.open()
        opened.append(backend)
        return backend

    yield factory
    for backend in opened:
        await backend.close()
    for url in urls:
        await _backend_redis.cleanup(url)


async def _finish(backend: RedisBackend, job_id: str, state: str = "completed") -> None:
    update = JobUpdate(job_id, state)  # type: ignore[arg-type]
    await backend.commit([CommitItem(None, lambda _: Transition(jobs=[update]))])


async def test_completed_and_failed_jobs_are_kept_up_to_a_count(make) -> None:
    backend = await make("keep_completed=2&keep_failed=1")
    await backend.enqueue([Job(f"j{i}", "q", "fn") for i in range(6)])
    await backend.claim("w", None, 10, 30)
    for i in range(4):
        await _finish(backend, f"j{i}")
    await _finish(backend, "j4", "failed")
    await _finish(backend, "j5", "failed")
    assert [await backend.get_job(f"j{i}") is None for i in range(6)] == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert (await backend.queue_counts())["q"] == {"completed": 2, "failed": 1}
    assert [j.id for j in (await backend.list_jobs("q")).items] == ["j5", "j3", "j2"]


async def test_old_jobs_and_ended_runs_are_swept_by_age(make) -> None:
    backend = await make("completed_ttl=1ms&run_ttl=1ms")
    await backend.enqueue([Job("old", "q", "fn", key="k")])
    await backend.claim("w", None, 10, 30)
    await _finish(backend, "old")
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", "completed", None, ts, ts, version=1, completed_at=ts)
    step = Job(f"{run_id}:a", "q", "a", run_id=run_id, flow="f")
    transition = Transition(run=record, events=[NewEvent("flow.completed")], enqueue=[step])
    await backend.commit([CommitItem(run_id, lambda _: transition)])
    await backend.claim("w", None, 10, 30)
    await _finish(backend, step.id)
    finished = now()
    while now() < finished + 0.01:  # everything must be older than the 1 ms retention age
        await asyncio.sleep(0.005)
    backend._next_sweep = 0.0  # sweep now, whoever swept last
    await backend.client.delete(backend.keys.sweep)
    await backend.claim("w", None, 10, 30)  # runs the sweep
    assert await backend.get_job("old") is None
    assert await backend.get_job(step.id) is None
    assert await backend.get_run(run_id) is None
    assert await backend.read_events(run_id) == []
    assert (await backend.list_runs()).items == []
    assert sum((await backend.queue_counts())["q"].values()) == 0
    # the key of a deleted job is free again
    assert await backend.enqueue([Job("new", "q", "fn", key="k")]) == ["new"]
    prefix = backend.options.prefix
    left = sorted([k async for k in backend.client.scan_iter(match=prefix + "*")])
    kinds = {k.split(prefix, 1)[1].split(":")[0] for k in left}
    assert not kinds & {"run", "ev", "rjobs", "st", "stx", "runs"}, left


async def test_memory_stays_bounded_under_a_steady_load(make) -> None:
    """20 rounds of 250 runs (start, claim, complete): with retention the key count and Redis
    memory of the prefix stop growing; the numbers are printed for the record."""
    backend = await make("keep_completed=100&run_ttl=1ms&feed_max=500")
    prefix = backend.options.prefix

    async def usage() -> tuple[int, int]:
        keys = [k async for k in backend.client.scan_iter(match=prefix + "*", count=1000)]
        # per-minute throughput counters (3 minutes at most) come and go with the clock
        keys = [k for k in keys if ":done:" not in (k.decode() if isinstance(k, bytes) else k)]
        sizes = [await backend.client.memory_usage(k) or 0 for k in keys]
        return len(keys), sum(sizes)

    samples = []
    for _round in range(20):
        ids = []
        for _ in range(250):
            run_id = uuid7()
            ts = now()
            record = RunRecord(run_id, "f", "running", None, ts, ts, version=1)
            job = Job(f"{run_id}:a", "q", "a", run_id=run_id, flow="f")
            start = Transition(run=record, events=[NewEvent("flow.started")], enqueue=[job])
            await backend.commit([CommitItem(run_id, lambda _, t=start: t)])
            ids.append(run_id)
        claimed = await backend.claim("w", None, 1000, 30)
        assert len(claimed) == 250
        for run_id in ids:

            def finish(stored: RunRecord | None, run_id: str = run_id) -> Transition:
                assert stored is not None  # a copy: the backend never hands out its own
                stored.status, stored.version = "completed", stored.version + 1
                stored.completed_at = stored.updated_at = now()
                return Transition(
                    run=stored,
                    events=[NewEvent("flow.completed")],
                    jobs=[JobUpdate(f"{run_id}:a", "completed")],
                )

            await backend.commit([CommitItem(run_id, finish)])
        finished = now()
        while now() < finished + 0.005:  # older than the 1 ms run retention
            await asyncio.sleep(0.002)
        backend._next_sweep = 0.0
        await backend.client.delete(backend.keys.sweep)
        await backend.claim("w", None, 1, 30)  # runs the sweep
        samples.append(await usage())
    print("keys and bytes per round:", samples)
    first_half_peak = max(keys for keys, _ in samples[:10])
    assert max(keys for keys, _ in samples[10:]) <= first_half_peak  # no growth
    assert samples[-1][1] <= max(b for _, b in samples[:10]) * 1.2  # memory stays bounded
