"""PostgreSQL: the run history is plain tables and views; every example query of
docs/postgres.md runs, and the two headline ones give the right answers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide import Context, Flow
from tests import _backend_postgres as pg
from tests.integration._engine_harness import running_app

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")
DOC = Path(__file__).resolve().parents[2] / "docs" / "postgres.md"


def doc_queries() -> list[str]:
    text = DOC.read_text()
    section = text.split("## Example queries", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def orders() -> Flow:
    flow = Flow("orders")

    @flow.entry(emits=["accepted"])
    async def accept(n: int, ctx: Context) -> int:
        await ctx.emit("accepted", n)
        return n

    @flow.step(subscribes=["accepted"], retries=1)
    async def charge(n: int, ctx: Context) -> int:
        if n % 3 == 0 or (n % 3 == 1 and ctx.attempt == 1):
            raise RuntimeError(f"card declined for {n}")
        return n * 10

    @flow.step(subscribes=["step:charge"])
    async def ship(charged: int, ctx: Context) -> str:
        return f"shipped {charged}"

    return flow


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    u = pg.url(tmp_path)
    yield u
    await pg.cleanup(u)


async def test_documented_queries_run_and_answer(url: str) -> None:
    async with running_app(url, orders()) as (app, _):
        run_ids = [await app.start("orders", n) for n in range(6)]
        views = {r: await app.wait(r, timeout=20) for r in run_ids}
    failed = sorted(r for r, v in views.items() if v["status"] == "failed")
    assert len(failed) == 2  # n = 0 and 3

    queries = doc_queries()
    assert len(queries) >= 5
    con = await asyncpg.connect(url.split("?", 1)[0])
    try:
        await con.execute(f'SET search_path = "{pg.schema_of(url)}"')
        results = [await con.fetch(q) for q in queries]
    finally:
        await con.close()

    p95 = {(r["flow"], r["step"]): r for r in results[0]}
    assert set(p95) == {("orders", "accept"), ("orders", "charge"), ("orders", "ship")}
    assert p95[("orders", "charge")]["attempts"] == 4  # n = 1, 2, 4, 5 (1 and 4 on retry)
    assert all(r["p95_ms"] >= 0 for r in p95.values())
    assert sorted(r["run_id"] for r in results[1]) == failed
    assert all("card declined" in r["message"] for r in results[1])
    statuses = {(r["flow"], r["status"]): r["runs"] for r in results[2]}
    assert statuses == {("orders", "completed"): 4, ("orders", "failed"): 2}
    retried = {r["step"]: r["retries"] for r in results[3]}
    assert retried == {"charge": 4}  # the first attempts for n = 0, 1, 3 and 4
    assert [r["seq"] for r in results[4]] == list(range(1, len(results[4]) + 1))
