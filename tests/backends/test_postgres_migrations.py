"""PostgreSQL: versioned migrations in a configurable schema, applied once under an advisory lock
(also by two processes starting together), and the ``flowtide db`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import _backend_postgres as pg

asyncpg = pytest.importorskip("asyncpg")

pytestmark = pytest.mark.skipif(pg.skip() is not None, reason=pg.skip() or "")


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    u = pg.url(tmp_path)
    yield u
    await pg.cleanup(u)


async def _query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    con = await asyncpg.connect(url.split("?", 1)[0])
    try:
        return list(await con.fetch(sql, *args))
    finally:
        await con.close()


def _db(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowtide.cli", "db", *args, "--json", "--backend", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _doc(proc: subprocess.Popen[bytes]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    doc: dict[str, object] = json.loads(out)
    return doc


async def test_tables_live_in_the_configured_schema(url):
    from flowtide.backends import create_backend
    from flowtide.backends.postgres.migrate import LATEST

    backend = create_backend(url)
    await backend.open()
    await backend.close()
    schema = pg.schema_of(url)
    rows = await _query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    assert {"runs", "events", "jobs", "state", "queues", "timers"} <= {r[0] for r in rows}
    versions = await _query(url, f'SELECT version FROM "{schema}".flowtide_migrations')
    assert [r[0] for r in versions] == list(range(1, LATEST + 1))


async def test_two_processes_upgrading_at_once_apply_each_migration_once(url):
    from flowtide.backends.postgres.migrate import LATEST

    procs = [_db(url, "upgrade") for _ in range(3)]
    docs = [_doc(p) for p in procs]
    applied = [v for d in docs for v in d["applied_now"]]  # type: ignore[attr-defined]
    assert sorted(applied) == list(range(1, LATEST + 1))
    assert all(d["version"] == LATEST and d["pending"] == [] for d in docs)


async def test_db_status_shows_the_version_and_what_is_pending(url):
    from flowtide.backends.postgres.migrate import LATEST

    before = _doc(_db(url, "status"))
    assert before["version"] == 0 and len(before["pending"]) == LATEST  # type: ignore[arg-type]
    _doc(_db(url, "upgrade"))
    after = _doc(_db(url, "status"))
    assert after["version"] == LATEST and after["pending"] == []
    again = _doc(_db(url, "upgrade"))
    assert again["applied_now"] == []


def test_db_commands_reject_other_backends(tmp_path):
    proc = _db(f"sqlite:///{tmp_path}/x.db", "status")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"PostgreSQL" in err


def test_an_unreachable_server_is_one_line_and_exit_5(tmp_path):
    proc = _db("postgresql://root@127.0.0.1:1/test", "status")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 5
    assert err.decode().count("\n") == 1
