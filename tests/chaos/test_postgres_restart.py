"""PostgreSQL is restarted (pg_ctlcluster ... restart) in the middle of a load: the server and
the workers reconnect by themselves, every run accepted with 201 completes, and nothing is
committed twice.

The shared cluster (15/main) also serves every other test run on this machine, so the test
restarts a private cluster of its own instead (pg_createcluster on a free port, dropped at the
end): same server, same restart, nobody else disturbed."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import _backend_postgres as pg
from tests._processes import Proc, flowtide_processes, write_app

asyncpg = pytest.importorskip("asyncpg")

VERSION = "15"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or ""),
    pytest.mark.skipif(shutil.which("pg_createcluster") is None, reason="no pg_createcluster"),
]

APP = textwrap.dedent(
    """
    import asyncio

    from flowtide import Context, Flow

    chain = Flow("chain")


    @chain.entry(emits=["a"])
    async def one(n: int, ctx: Context) -> int:
        await ctx.emit("a", n)
        return n


    @chain.step(subscribes=["a"], emits=["b"])
    async def two(n: int, ctx: Context) -> int:
        await asyncio.sleep(0.01)
        await ctx.emit("b", n + 1)
        return n + 1


    @chain.step(subscribes=["b"])
    async def three(n: int, ctx: Context) -> int:
        return n * 2
    """
)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[str, str]]:
    """A private PostgreSQL cluster: (its name, a URL with a schema in it)."""
    name, port = f"ftchaos{os.getpid()}", _free_port()
    create = [
        *("pg_createcluster", VERSION, name, "-p", str(port), "--start"),
        *("--", "--auth-local=trust", "--auth-host=trust"),
    ]
    made = await asyncio.to_thread(_run, create)
    assert made.returncode == 0, made.stderr
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres?schema=chaos"
        await wait_for_server(url)
        yield name, url
    finally:
        drop = ["pg_dropcluster", "--stop", VERSION, name]
        await asyncio.to_thread(_run, drop)


async def wait_for_server(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = await asyncpg.connect(url.split("?", 1)[0], timeout=2)
            await con.fetchval("SELECT 1")
            await con.close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def fetch(url: str, sql: str) -> list[Any]:
    con = await asyncpg.connect(url.split("?", 1)[0])
    try:
        await con.execute(f'SET search_path = "{pg.schema_of(url)}"')
        return list(await con.fetch(sql))
    finally:
        await con.close()


def _base_url(server: Proc) -> str:
    server.wait_for_output("http://", timeout=30)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
    assert match, server.output()
    return f"http://127.0.0.1:{match.group(1)}"


async def test_a_postgres_restart_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, cluster: tuple[str, str], wait_until: Any
) -> None:
    name, pg_url = cluster
    write_app(tmp_path, APP, pg_url, ["[worker]", 'lease = "2s"', "concurrency = 8"])
    accepted: list[str] = []
    refused = 0
    with flowtide_processes(tmp_path) as procs:
        base = _base_url(procs.start("serve", "--port", "0", name="serve"))
        workers = [procs.start("worker", name=f"worker{i}") for i in range(2)]
        for proc in workers:  # opened before the restart: a process that cannot reach the
            proc.wait_for_output("ready", timeout=60)  # backend at start-up exits by design
        stop = asyncio.Event()

        async def load(client: httpx.AsyncClient, lane: int) -> None:
            nonlocal refused
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = await client.post("/api/flows/chain/runs", json={"input": lane * 10**6 + n})
                except httpx.TransportError:
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                if r.status_code == 201:
                    accepted.append(r.json()["run_id"])
                else:
                    assert r.status_code == 503, r.text
                    refused += 1
                    await asyncio.sleep(0.05)

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            lanes = [asyncio.create_task(load(client, i)) for i in range(4)]
            await wait_until(lambda: len(accepted) >= 50, timeout=30, what="load to build up")
            before = len(accepted)
            restart = await asyncio.to_thread(
                _run, ["pg_ctlcluster", "--skip-systemctl-redirect", VERSION, name, "restart"]
            )
            assert restart.returncode == 0, restart.stderr
            await wait_for_server(pg_url)
            after_restart = len(accepted)
            await wait_until(
                lambda: len(accepted) >= after_restart + 50, timeout=60, what="load to resume"
            )
            stop.set()
            await asyncio.gather(*lanes)

        async def all_done() -> bool:
            rows = await fetch(pg_url, "SELECT count(*) FROM runs WHERE status = 'running'")
            return rows[0][0] == 0

        await wait_until(all_done, timeout=90, what="every run to finish after the restart")
        for proc in workers:
            assert proc.popen.poll() is None, proc.output()  # still running: reconnected
    assert before >= 50
    runs = {r[0]: r[1] for r in await fetch(pg_url, "SELECT run_id, status FROM runs")}
    assert set(accepted) <= set(runs), "a run answered with 201 is missing"
    assert set(runs.values()) == {"completed"}, {s for s in runs.values()}
    per_run = await fetch(
        pg_url,
        "SELECT run_id, count(*) FILTER (WHERE type = 'step.completed') AS done, "
        "count(*) FILTER (WHERE type = 'flow.completed') AS terminal, "
        "max(seq) = count(*) AS dense FROM events GROUP BY run_id",
    )
    assert len(per_run) == len(runs)
    bad = [dict(r) for r in per_run if not (r["done"] == 3 and r["terminal"] == 1 and r["dense"])]
    assert not bad, bad[:5]
    jobs = await fetch(pg_url, "SELECT state, count(*) FROM jobs GROUP BY state")
    assert {r[0]: r[1] for r in jobs} == {"completed": 3 * len(runs)}
