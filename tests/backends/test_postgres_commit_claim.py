"""PostgreSQL: ``commit_and_claim``, the worker's round-trip saver (a commit also claims jobs
for the slots it frees). A batch that only finishes function jobs is one statement; any other
batch runs the claim in the commit's transaction, after its writes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Job, JobUpdate, Transition
from flowtide.backends.postgres import PostgresBackend
from flowtide.events import NewEvent, RunRecord
from tests import _backend_postgres


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[PostgresBackend]:
    reason = _backend_postgres.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_postgres.url(tmp_path)
    backend = create_backend(url)
    assert isinstance(backend, PostgresBackend)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        await _backend_postgres.cleanup(url)


def _bump(record: RunRecord, **changes: object) -> RunRecord:
    return dataclasses.replace(record, version=record.version + 1, updated_at=now(), **changes)  # type: ignore[arg-type]


async def _start(backend: PostgresBackend, step: str = "a") -> str:
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", "running", {"n": 1}, ts, ts, version=1)
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


def _finish(job: Job, result: object = None) -> CommitItem:
    t = Transition(jobs=[JobUpdate(job.id, "completed", result=result)])
    return CommitItem(None, lambda _: t)


async def test_a_batch_of_finished_functions_claims_the_next_jobs(pg: PostgresBackend) -> None:
    await pg.enqueue([Job(f"j{i}", "q", "fn", input=i) for i in range(5)])
    first = await pg.claim("w", None, 2, 30)
    assert [j.id for j in first] == ["j0", "j1"]
    events, claimed = await pg.commit_and_claim(
        [_finish(j, {"r": j.input}) for j in first], "w", None, 2, 30
    )
    assert events == [[], []]
    assert [j.id for j in claimed] == ["j2", "j3"]
    assert all((j.state, j.attempt, j.worker) == ("active", 1, "w") for j in claimed)
    done = await pg.get_job("j1")
    assert done is not None and (done.state, done.result, done.worker) == (
        "completed",
        {"r": 1},
        None,
    )
    # nothing left for the slots of a batch: no jobs, the commit applied all the same
    events, claimed = await pg.commit_and_claim([_finish(j) for j in claimed], "w", None, 5, 30)
    assert [j.id for j in claimed] == ["j4"]
    events, claimed = await pg.commit_and_claim([_finish(claimed[0])], "w", None, 5, 30)
    assert claimed == []
    assert {(await pg.get_job(f"j{i}")).state for i in range(5)} == {"completed"}  # type: ignore[union-attr]


async def test_a_job_finished_past_its_lease_is_not_claimed_again(pg: PostgresBackend) -> None:
    await pg.enqueue([Job("late", "q", "fn")])
    (job,) = await pg.claim("w", None, 1, 0.05)
    await asyncio.sleep(0.1)  # its lease expired: a claim would take it back
    _, claimed = await pg.commit_and_claim([_finish(job, 7)], "w", None, 5, 30)
    assert claimed == []
    stored = await pg.get_job("late")
    assert stored is not None and (stored.state, stored.result, stored.reclaims) == (
        "completed",
        7,
        0,
    )


async def test_commit_and_claim_claims_what_the_commit_enqueued(pg: PostgresBackend) -> None:
    run_id = await _start(pg)
    (job,) = await pg.claim("w", None, 10, 30)
    events, claimed = await pg.commit_and_claim([_complete(job, then="b")], "w", None, 5, 30)
    assert [e["type"] for e in events[0]] == ["step.completed"]
    assert [j.id for j in claimed] == [f"{run_id}:b"]
    assert (claimed[0].state, claimed[0].attempt, claimed[0].worker) == ("active", 1, "w")
    history = [(e["seq"], e["type"], e["step"]) for e in await pg.read_events(run_id)]
    assert history[-2:] == [(3, "step.completed", "a"), (4, "step.started", "b")]
    assert (await pg.get_job(job.id)).state == "completed"  # type: ignore[union-attr]
    # in the feed, the claim's events come after the commit's (one transaction, distinct and
    # ordered positions)
    feed = [(e["type"], e["step"]) for _, e in await pg.read_feed(0) if e["run_id"] == run_id]
    assert feed[-2:] == [("step.completed", "a"), ("step.started", "b")]
    positions = [pos for pos, _ in await pg.read_feed(0)]
    assert positions == sorted(set(positions))


async def test_commit_and_claim_with_nothing_to_write_still_claims(pg: PostgresBackend) -> None:
    await pg.enqueue([Job("j1", "q", "fn"), Job("j2", "q", "fn")])
    (first,) = await pg.claim("w", None, 1, 30)
    # a stale failure (an attempt that is not the job's current one) writes nothing
    stale = CommitItem(None, lambda _: Transition(jobs=[JobUpdate(first.id, "failed")]))
    stale.attempt_of = (first.id, first.attempt + 1)
    events, claimed = await pg.commit_and_claim([stale], "w", None, 5, 30)
    assert events == [[]]
    assert [j.id for j in claimed] == ["j2"]
    assert (await pg.get_job(first.id)).state == "active"  # type: ignore[union-attr]


async def test_a_claim_does_not_ride_on_a_commit_that_fails(pg: PostgresBackend) -> None:
    await pg.enqueue([Job("j1", "q", "fn")])

    def boom(_: RunRecord | None) -> Transition:
        raise ValueError("decide failed")

    with pytest.raises(ValueError):
        await pg.commit_and_claim([CommitItem(None, boom)], "w", None, 5, 30)
    assert (await pg.get_job("j1")).state == "waiting"  # type: ignore[union-attr]


async def test_commit_and_claim_respects_queues_and_exclusions(pg: PostgresBackend) -> None:
    await pg.enqueue([Job("a1", "a", "fn"), Job("b1", "b", "fn"), Job("c1", "c", "fn")])
    (job,) = await pg.claim("w", ["a"], 1, 30)
    _, claimed = await pg.commit_and_claim([_finish(job)], "w", None, 5, 30, exclude=["b"])
    assert [j.id for j in claimed] == ["c1"]
    _, claimed = await pg.commit_and_claim([_finish(claimed[0])], "w", [], 5, 30)
    assert claimed == []  # no queue wanted: a plain commit
    assert (await pg.get_job("c1")).state == "completed"  # type: ignore[union-attr]
    assert (await pg.get_job("b1")).state == "waiting"  # type: ignore[union-attr]


async def test_claims_are_planned_for_their_parameters(pg: PostgresBackend) -> None:
    """A plan cached for any parameters (PostgreSQL's generic plan, after five runs of a
    prepared statement) would be made for the table sizes of its moment: a claim planned on a
    small queue read and sorted every due job once the queue was long."""
    from flowtide.backends._common import LEASE_LOST
    from flowtide.backends.postgres.backend import _CLAIM

    async with pg._conn(planned=True) as con:
        assert await con.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        for _ in range(8):
            ts = now()
            await con.fetch(_CLAIM, ts, None, [], 10, "w", ts + 30, LEASE_LOST, 0)
        row = await con.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            _CLAIM,
        )
    assert row is not None and row["generic_plans"] == 0 and row["custom_plans"] >= 8
