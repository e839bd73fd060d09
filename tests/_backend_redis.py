"""Redis for the test suite: each test gets its own key prefix on 127.0.0.1:6379, deleted after."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def skip() -> str | None:
    if importlib.util.find_spec("flowtide.backends.redis") is None:
        return "the Redis backend is not implemented yet"
    return None


def url(tmp: Path) -> str:
    raise NotImplementedError


async def cleanup(url: str) -> None:
    return None
