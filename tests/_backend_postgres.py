"""PostgreSQL for the test suite: each test gets its own schema in database `test`."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def skip() -> str | None:
    if importlib.util.find_spec("flowtide.backends.postgres") is None:
        return "the PostgreSQL backend is not implemented yet"
    return None


def url(tmp: Path) -> str:
    raise NotImplementedError


async def cleanup(url: str) -> None:
    return None
