"""Redis: the worker's round-trip savers. A claim returns each step job's run record, which
the commit of its outcome decides on without loading it (checked by version: a stale one is a
conflict, decided again on the stored record), and ``commit_and_claim`` claims in the script
call of a commit."""

from __future__ import annotations

import dataclasses
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

Pair = tuple[RedisBackend, RedisBackend]


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Two handles on one store, as two processes would have."""
    reason = _backend_redis.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_redis.url(tmp_path)
    a, b = create_backend(url), create_backend(url)
    assert isinstance(a, RedisBackend) and isinstance(b, RedisBackend)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await _backend_redis.cleanup(url)


def _bump(record: RunRecord, **changes: object) -> RunRecord:
    return dataclasses.replace(record, version=record.version + 1, updated_at=now(), **changes)  # type: ignore[arg-type]


async def _start(backend: RedisBackend, step: str = "a") -> str:
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", "running", {"n": 1}, ts, ts, version=1, trigger={"t": 1})
    job = Job(f"{run_id}:{step}", "q", step, run_id=run_id, flow="f")
    transition = Transition(run=record, events=[NewEvent("flow.started", {})], enqueue=[job])
    await backend.commit([CommitItem(run_id, lambda _: transition)])
    return run_id


def _complete(job: Job, then: str | None = None) -> CommitItem:
    def decide(stored: RunRecord | None) -> Transition:
        assert stored is not None
        done = {**stored.done, job.name: "completed"}
        t = Transition(
            run=_bump(stored, done=done),
            events=[NewEvent("step.completed", {}, job.name, job.attempt)],
            jobs=[JobUpdate(job.id, "completed")],
        )
        if then is not None:
            t.enqueue.append(Job(f"{job.run_id}:{then}", "q", then, run_id=job.run_id, flow="f"))
        return t

    return CommitItem(job.run_id, decide)


async def test_commit_decides_on_the_claimed_record_or_again_when_stale(pair: Pair) -> None:
    a, b = pair
    run_id = await _start(b)
    (job,) = await a.claim("w", None, 10, 30)
    assert a.cached_run(run_id) is not None and a.cached_run(run_id).trigger == {"t": 1}

    # another process changes the run after the claim: the remembered record is stale
    def wait(stored: RunRecord | None) -> Transition:
        assert stored is not None
        return Transition(run=_bump(stored, status="waiting"))

    await b.commit([CommitItem(run_id, wait)])
    conflicts = a.conflicts
    await a.commit([_complete(job)])
    assert a.conflicts == conflicts + 1
    record = await a.get_run(run_id)
    assert (record.version, record.status, record.done) == (3, "waiting", {"a": "completed"})
    assert a.cached_run(run_id).version == 3
    # decided on the remembered (current) record: no conflict
    await b.commit([CommitItem(None, lambda _: Transition(jobs=[JobUpdate(job.id, "waiting")]))])
    (again,) = await a.claim("w", None, 10, 30)
    await a.commit([_complete(again)])
    assert a.conflicts == conflicts + 1
    assert (await a.get_run(run_id)).version == 4


async def test_commit_and_claim_claims_what_the_commit_enqueued(pair: Pair) -> None:
    a, _ = pair
    run_id = await _start(a)
    (job,) = await a.claim("w", None, 10, 30)
    events, claimed = await a.commit_and_claim([_complete(job, then="b")], "w", None, 5, 30)
    assert [e["type"] for e in events[0]] == ["step.completed"]
    assert [j.id for j in claimed] == [f"{run_id}:b"]
    assert (claimed[0].state, claimed[0].attempt, claimed[0].worker) == ("active", 1, "w")
    history = [(e["type"], e["step"]) for e in await a.read_events(run_id)]
    assert history[-2:] == [("step.completed", "a"), ("step.started", "b")]
    assert (await a.get_job(job.id)).state == "completed"


async def test_commit_and_claim_with_nothing_to_write_still_claims(pair: Pair) -> None:
    a, _ = pair
    await a.enqueue([Job("j1", "q", "fn"), Job("j2", "q", "fn")])
    (first,) = await a.claim("w", None, 1, 30)
    # a stale failure (an attempt that is not the job's current one) writes nothing
    stale = CommitItem(None, lambda _: Transition(jobs=[JobUpdate(first.id, "failed")]))
    stale.attempt_of = (first.id, first.attempt + 1)
    events, claimed = await a.commit_and_claim([stale], "w", None, 5, 30)
    assert events == [[]]
    assert [j.id for j in claimed] == ["j2"]
    assert (await a.get_job(first.id)).state == "active"


async def test_a_claim_does_not_ride_on_a_commit_that_fails(pair: Pair) -> None:
    a, _ = pair
    await a.enqueue([Job("j1", "q", "fn")])

    def boom(_: RunRecord | None) -> Transition:
        raise ValueError("decide failed")

    with pytest.raises(ValueError):
        await a.commit_and_claim([CommitItem(None, boom)], "w", None, 5, 30)
    assert (await a.get_job("j1")).state == "waiting"
