"""Redis for the test suite: each test gets its own key prefix on 127.0.0.1:6379, deleted after.

A location that cannot hold data (a path below a regular file, which the conformance suite
uses to check start-up errors) maps to an address where no Redis answers.
"""

from __future__ import annotations

import importlib.util
import socket
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HOST, PORT = "127.0.0.1", 6379
_reachable: bool | None = None


def skip() -> str | None:
    global _reachable
    if importlib.util.find_spec("redis") is None:
        return "redis-py is not installed (pip install 'flowtide[redis]')"
    if _reachable is None:
        try:
            with socket.create_connection((HOST, PORT), timeout=1):
                _reachable = True
        except OSError:
            _reachable = False
    if not _reachable:
        return f"no Redis server on {HOST}:{PORT}"
    return None


def url(tmp: Path) -> str:
    prefix = f"flowtide-test:{uuid.uuid4().hex[:12]}:"
    if tmp.is_file():
        return f"redis://{HOST}:1/0?prefix={prefix}&connect_timeout=1"
    return f"redis://{HOST}:{PORT}/0?prefix={prefix}"


def prefix_of(url: str) -> str:
    (prefix,) = parse_qs(urlsplit(url).query)["prefix"]
    return prefix


async def cleanup(url: str) -> None:
    """Delete every key of the test's prefix."""
    import redis.asyncio as aioredis

    if urlsplit(url).port != PORT:
        return
    client = aioredis.Redis(host=HOST, port=PORT, db=0)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=prefix_of(url) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()
