"""PostgreSQL with real processes: a server whose connection pool is exhausted (requests wait
or get 503, the stored state stays consistent). The SIGKILLed-worker test for every shared
backend is tests/chaos/test_worker_crash.py."""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import _backend_postgres as pg
from tests._processes import Proc, flowtide_processes, write_app

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")

SIMPLE = textwrap.dedent(
    """
    from flowtide import Context, Flow

    simple = Flow("simple")


    @simple.entry(emits=["next"])
    async def one(n: int, ctx: Context) -> int:
        await ctx.emit("next", n)
        return n


    @simple.step(subscribes=["next"])
    async def two(n: int, ctx: Context) -> int:
        return n * 2
    """
)


@pytest.fixture
async def pg_url(tmp_path: Path) -> AsyncIterator[str]:
    url = pg.url(tmp_path / "db")
    yield url
    await pg.cleanup(url)


async def fetch(url: str, sql: str, *args: Any) -> list[Any]:
    con = await asyncpg.connect(url.split("?", 1)[0])
    try:
        await con.execute(f'SET search_path = "{pg.schema_of(url)}"')
        return list(await con.fetch(sql, *args))
    finally:
        await con.close()


def _base_url(server: Proc) -> str:
    server.wait_for_output("http://", timeout=30)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
    assert match, server.output()
    return f"http://127.0.0.1:{match.group(1)}"


async def test_an_exhausted_pool_waits_or_answers_503_and_never_corrupts_state(
    tmp_path: Path, pg_url: str, wait_until: Any
) -> None:
    """The server has one connection (pool_size=1, pool_timeout=0.3s). A lock taken by the test
    holds that connection inside a start; the starts behind it wait for the pool and then get
    503. After the lock goes, exactly the accepted (201) runs exist and all complete."""
    tiny = f"{pg_url}&pool_size=1&pool_timeout=0.3"
    write_app(tmp_path, SIMPLE, tiny)
    blocker = await asyncpg.connect(pg_url.split("?", 1)[0])
    try:
        with flowtide_processes(tmp_path) as procs:
            base = _base_url(procs.start("serve", "--port", "0", name="serve"))
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:

                async def start(n: int) -> httpx.Response:
                    return await client.post("/api/flows/simple/runs", json={"input": n})

                assert (await start(-1)).status_code == 201  # warm: the pool's one connection
                schema = pg.schema_of(pg_url)
                tx = blocker.transaction()
                await tx.start()
                await blocker.execute(f'LOCK TABLE "{schema}".runs IN ACCESS EXCLUSIVE MODE')
                held = asyncio.ensure_future(start(0))  # takes the connection, waits on the lock
                await asyncio.sleep(0.1)
                crowd = await asyncio.gather(*(start(n) for n in range(1, 21)))
                await tx.rollback()
                first = await held
                codes = [r.status_code for r in crowd]
                assert set(codes) <= {201, 503}, [r.text for r in crowd]
                assert codes.count(503) >= 1, codes
                busy = [r.json() for r in crowd if r.status_code == 503]
                assert all(b["error"]["code"] == "backend_unavailable" for b in busy)
                assert first.status_code == 201, first.text
                accepted = [r.json()["run_id"] for r in [first, *crowd] if r.status_code == 201]
                after = await start(99)  # the server recovered
                assert after.status_code == 201
                accepted.append(after.json()["run_id"])
            procs.start("worker", name="worker")
            rows = await fetch(pg_url, "SELECT run_id FROM runs WHERE body->'input' != '-1'")
            assert sorted(r[0] for r in rows) == sorted(accepted)

            async def all_done() -> bool:
                left = await fetch(pg_url, "SELECT count(*) FROM runs WHERE status = 'running'")
                return left[0][0] == 0

            await wait_until(all_done, timeout=60, what="every accepted run to finish")
    finally:
        await blocker.close()
    runs = await fetch(pg_url, "SELECT status, count(*) FROM runs GROUP BY status")
    assert {r[0]: r[1] for r in runs} == {"completed": len(accepted) + 1}
    per_run = await fetch(
        pg_url,
        "SELECT run_id, count(*) FILTER (WHERE type = 'step.completed') AS done, "
        "count(*) FILTER (WHERE type = 'flow.completed') AS terminal, max(seq) = count(*) AS dense "
        "FROM events GROUP BY run_id",
    )
    assert all(r["done"] == 2 and r["terminal"] == 1 and r["dense"] for r in per_run)
