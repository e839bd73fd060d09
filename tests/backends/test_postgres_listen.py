"""PostgreSQL wake-ups: LISTEN/NOTIFY with ids-only payloads; a LISTEN connection that the
server drops is re-established, and waiters are woken by the fallback poll meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Job, Transition
from flowtide.backends.postgres import PostgresBackend
from flowtide.events import NewEvent, RunRecord
from tests import _backend_postgres as pg

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[PostgresBackend, PostgresBackend]]:
    url = f"{pg.url(tmp_path)}&poll=0.2"
    a, b = create_backend(url), create_backend(url)
    assert isinstance(a, PostgresBackend) and isinstance(b, PostgresBackend)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()
    await pg.cleanup(url)


async def listening(backend: PostgresBackend) -> int:
    listener = backend._listener
    assert listener is not None
    await asyncio.wait_for(listener.connected.wait(), 10)
    assert listener.server_pid is not None
    return listener.server_pid


async def woken_within(backend: PostgresBackend, action: object, limit: float) -> float:
    backend._unseen = False  # only what happens from here on counts
    waiter = asyncio.create_task(backend.wait_for_change(30))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await action  # type: ignore[misc]
    await asyncio.wait_for(waiter, limit)
    return time.monotonic() - started


async def test_a_change_by_another_process_wakes_a_waiter_through_notify(pair) -> None:
    a, b = pair
    await listening(a)
    took = await woken_within(a, b.enqueue([Job(id="j1", queue="q", name="fn")]), 5)
    assert took < 1.0


def new_runs(run_ids: list[str]) -> list[CommitItem]:
    records = [RunRecord(r, "f", "running", None, 0.0, 0.0, version=1) for r in run_ids]
    return [
        CommitItem(r.run_id, lambda _, r=r: Transition(run=r, events=[NewEvent("log", {})]))
        for r in records
    ]


async def test_notifications_carry_ids_only(pair) -> None:
    a, b = pair
    seen: list[str] = []
    con = await asyncpg.connect(a.settings.dsn)
    try:
        await con.add_listener(a.settings.channel, lambda *args: seen.append(args[-1]))
        await b.enqueue([Job(id="j1", queue="q", name="fn", input={"big": "x" * 10_000})])
        few = [f"r{i:05d}" for i in range(3)]
        await b.commit(new_runs(few))
        many = [f"s{i:05d}" for i in range(2000)]  # their ids exceed the 8 KB limit together
        await b.commit(new_runs(many))
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await con.close()
    assert seen == ["", ",".join(few), ""]  # an enqueue: no data; too many ids: none at all


async def test_a_lost_listen_connection_is_reestablished_and_the_poll_covers_the_gap(
    pair,
) -> None:
    a, b = pair
    old_pid = await listening(a)
    killer = await asyncpg.connect(a.settings.dsn)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", old_pid)
    finally:
        await killer.close()
    # while the connection is down or coming back, a waiter still wakes within the poll
    took = await woken_within(a, b.enqueue([Job(id="j2", queue="q", name="fn")]), 5)
    assert took < 2.0
    new_pid = await listening(a)
    assert new_pid != old_pid
    took = await woken_within(a, b.enqueue([Job(id="j3", queue="q", name="fn")]), 5)
    assert took < 1.0
