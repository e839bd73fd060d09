"""PostgreSQL retention: finished jobs and old run histories are deleted in small batches by a
configurable policy; what is still needed is kept; table size stays bounded under a steady
load (measured here over a short window with the policy's windows shortened)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Job, JobUpdate, StateOp, Transition
from flowtide.backends.postgres import PostgresBackend
from flowtide.events import NewEvent, RunRecord
from tests import _backend_postgres as pg

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")
LEASE = 30.0


@pytest.fixture
async def open_backend(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    urls: list[str] = []
    opened: list[PostgresBackend] = []

    async def make(params: str) -> PostgresBackend:
        url = f"{pg.url(tmp_path)}&{params}"
        urls.append(url)
        b = create_backend(url)
        assert isinstance(b, PostgresBackend)
        await b.open()
        opened.append(b)
        return b

    yield make
    for b in opened:
        await b.close()
    for url in urls:
        await pg.cleanup(url)


async def sql(b: PostgresBackend, query: str, *args: Any) -> list[Any]:
    con = await asyncpg.connect(b.settings.dsn)
    try:
        await con.execute(f'SET search_path = "{b.schema}"')
        return list(await con.fetch(query, *args))
    finally:
        await con.close()


async def finish(b: PostgresBackend, job_id: str, state: str = "completed") -> None:
    t = Transition(jobs=[JobUpdate(job_id, state, result=1)])  # type: ignore[arg-type]
    await b.commit([CommitItem(None, lambda _: t)])


async def make_run(b: PostgresBackend, status: str) -> str:
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", status, None, ts, ts, version=1)
    if status != "running":
        record.completed_at = ts
    job = Job(id=f"{run_id}:a", queue="q", name="a", run_id=run_id, flow="f")
    t = Transition(
        run=record,
        events=[NewEvent("flow.started", {}), NewEvent("log", {"m": "x"})],
        enqueue=[job],
        state=[StateOp(run_id, "k", "set", 1)],
    )
    await b.commit([CommitItem(run_id, lambda _: t)])
    return run_id


async def test_old_finished_jobs_and_ended_runs_go_the_rest_stays(open_backend) -> None:
    b = await open_backend("retain_jobs=1h&retain_runs=1d&retention_batch=2")
    old_jobs = [f"old{i}" for i in range(5)]
    await b.enqueue([Job(id=j, queue="q", name="fn") for j in [*old_jobs, "recent", "live"]])
    await b.claim("w", None, 10, LEASE)
    for j in [*old_jobs, "recent"]:
        await finish(b, j, "failed" if j == "old0" else "completed")
    await b.commit(
        [CommitItem(None, lambda _: Transition(state=[StateOp("job:old1", "k", "set", 1)]))]
    )
    ended, running = await make_run(b, "completed"), await make_run(b, "running")
    await finish(b, f"{ended}:a")
    hour, day = 3600.0, 86400.0
    await sql(b, "UPDATE jobs SET finished_at = finished_at - $1 WHERE id LIKE 'old%'", hour + 5)
    await sql(b, "UPDATE jobs SET finished_at = finished_at - $1 WHERE run_id IS NOT NULL", day)
    await sql(
        b, "UPDATE runs SET completed_at = completed_at - $1, started_at = started_at - $1", day + 5
    )

    assert await b.sweep() == {"jobs": 5, "runs": 1}
    jobs = {r[0] for r in await sql(b, "SELECT id FROM jobs")}
    assert jobs == {"recent", "live", f"{running}:a"}
    assert [r[0] for r in await sql(b, "SELECT run_id FROM runs")] == [running]
    assert {r[0] for r in await sql(b, "SELECT DISTINCT run_id FROM events")} == {running}
    assert {r[0] for r in await sql(b, "SELECT scope FROM state")} == {running}
    assert await b.sweep() == {"jobs": 0, "runs": 0}


async def test_never_keeps_everything(open_backend) -> None:
    b = await open_backend("retain_jobs=never&retain_runs=never")
    await b.enqueue([Job(id="j", queue="q", name="fn")])
    await b.claim("w", None, 1, LEASE)
    await finish(b, "j")
    await sql(b, "UPDATE jobs SET finished_at = 0")
    assert await b.sweep() == {"jobs": 0, "runs": 0}
    assert await b.get_job("j") is not None


async def test_table_size_stays_bounded_under_a_steady_load(open_backend) -> None:
    """Jobs flow through (enqueue, claim, finish) at a steady rate for a few seconds while the
    policy keeps finished jobs 1s; after warming up, the jobs table stops growing."""
    b = await open_backend("retain_jobs=1s&retain_runs=1s&retention_batch=500")
    sizes: list[int] = []
    total = 0
    started = time.monotonic()
    while time.monotonic() - started < 4.5:
        batch = [Job(id=uuid7(), queue="q", name="fn", input={"n": total + i}) for i in range(200)]
        total += len(batch)
        await b.enqueue(batch)
        claimed = await b.claim("w", None, 200, LEASE)
        items = [
            CommitItem(None, lambda _, j=j: Transition(jobs=[JobUpdate(j.id, "completed")]))
            for j in claimed
        ]
        await b.commit(items)
        await b.sweep()
        rows = await sql(b, "SELECT pg_total_relation_size('jobs')")
        sizes.append(rows[0][0])
    third = len(sizes) // 3
    warm, late = max(sizes[third : 2 * third]), max(sizes[2 * third :])
    assert total >= 3000
    assert late <= warm * 1.5, (warm, late, sizes[::10])


async def test_expired_records_are_deleted_whatever_the_policy(open_backend) -> None:
    b = await open_backend("retain_jobs=never&retain_runs=never&retention_batch=2")
    ts = now()
    for i in range(5):
        await b.put_record("idem", f"old{i}", {"i": i}, expires_at=ts - 1)
    await b.put_record("idem", "live", 1, expires_at=ts + 60)
    await b.put_record("idem", "forever", 2)
    assert await b.sweep() == {"jobs": 0, "runs": 0}  # records are not counted
    assert {r[0] for r in await sql(b, "SELECT key FROM records")} == {"live", "forever"}
