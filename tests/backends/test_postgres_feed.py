"""PostgreSQL: the lifecycle feed follows commit order. A reader never moves its cursor past an
event that a slower transaction is still about to commit; transactions of other programs do not
hold the feed back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Transition
from flowtide.backends.postgres import PostgresBackend
from flowtide.events import NewEvent, RunRecord
from tests import _backend_postgres as pg

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[PostgresBackend]:
    url = pg.url(tmp_path)
    b = create_backend(url)
    assert isinstance(b, PostgresBackend)
    await b.open()
    yield b
    await b.close()
    await pg.cleanup(url)


async def start_run(backend: PostgresBackend) -> str:
    run_id = uuid7()
    record = RunRecord(run_id, "f", "running", None, now(), now(), version=1)
    transition = Transition(run=record, events=[NewEvent("flow.started", {})])
    await backend.commit([CommitItem(run_id, lambda _: transition)])
    return run_id


async def connect(backend: PostgresBackend, name: str) -> asyncpg.Connection:
    settings = {"search_path": f'"{backend.schema}"', "application_name": name}
    return await asyncpg.connect(backend.settings.dsn, server_settings=settings)


async def test_the_feed_waits_for_an_older_transaction_still_writing(backend) -> None:
    slow_run = await start_run(backend)
    head = (await backend.read_feed(0))[-1][0]
    slow = await connect(backend, backend.settings.application_name)  # a process mid-commit
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO events (run_id, seq, pos, ts, type, flow) VALUES "
            "($1, 2, (pg_current_xact_id()::text::bigint << 20) + 1, 0, 'step.started', 'f')",
            slow_run,
        )
        fast_run = await start_run(backend)  # a younger transaction that commits first
        assert await backend.read_feed(head) == []  # not yet: the slow one may land before it
        await tx.commit()
    finally:
        await slow.close()
    items = await backend.read_feed(head)
    assert [(e["run_id"], e["type"]) for _, e in items] == [
        (slow_run, "step.started"),
        (fast_run, "flow.started"),
    ]


async def test_other_programs_transactions_do_not_hold_the_feed_back(backend) -> None:
    other = await connect(backend, "psql")
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT pg_current_xact_id()")  # an open transaction with an xid
        run_id = await start_run(backend)
        assert [e["run_id"] for _, e in await backend.read_feed(0)] == [run_id]
        await tx.rollback()
    finally:
        await other.close()
