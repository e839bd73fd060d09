"""PostgreSQL for the test suite: each test gets its own schema in database `test` on
127.0.0.1:5432 (trust auth), dropped after. ``FLOWTIDE_TEST_PG`` overrides the server URL."""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SERVER = os.environ.get("FLOWTIDE_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
_reachable: bool | None = None


def _check() -> bool:
    """Is something listening where the server should be? (a socket: skip() may be called
    from a running event loop)"""
    parts = urlsplit(SERVER)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 3):
            return True
    except OSError:
        return False


def skip() -> str | None:
    global _reachable
    if importlib.util.find_spec("flowtide.backends.postgres") is None:
        return "the PostgreSQL backend is not implemented yet"
    if importlib.util.find_spec("asyncpg") is None:
        return "asyncpg is not installed (pip install 'flowtide[postgres]')"
    if _reachable is None:
        _reachable = _check()
    if not _reachable and not os.environ.get("CI"):
        return f"PostgreSQL is not reachable at {SERVER}"
    return None  # on CI an unreachable server fails the tests instead of skipping them


def url(tmp: Path) -> str:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    server = SERVER
    if tmp.exists() and not tmp.is_dir():
        # the "unusable location" test passes a path below a regular file: a database that
        # does not exist is this backend's unusable location
        server = server.rsplit("/", 1)[0] + "/flowtide_no_such_database"
    return f"{server}?schema={schema}"


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


async def cleanup(url: str) -> None:
    import asyncpg

    try:
        con = await asyncpg.connect(url.split("?", 1)[0], timeout=5)
    except Exception:
        return
    try:
        await con.execute(f'DROP SCHEMA IF EXISTS "{schema_of(url)}" CASCADE')
    finally:
        await con.close()
