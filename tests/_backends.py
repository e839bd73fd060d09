"""The backends every behavioural test runs against, as URL factories.

A factory gives a fresh, empty store for one test (a temporary file, a Redis key prefix, a
PostgreSQL schema), says why it cannot run here (``skip``), and removes what the test left
(``cleanup``). The conformance suite (tests/backends) and the engine tests (tests/integration)
both use this list, so a backend added here is tested by both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tests import _backend_postgres, _backend_redis


async def _nothing(url: str) -> None:
    return None


@dataclass(frozen=True)
class BackendFactory:
    name: str
    url: Callable[[Path], str]
    # True: a second backend object opened on the same URL shares the data (several processes
    # on one store). False (memory://): the data lives in the object.
    shared_url: bool
    skip: Callable[[], str | None] = lambda: None
    cleanup: Callable[[str], Awaitable[None]] = _nothing


FACTORIES: list[BackendFactory] = [
    BackendFactory("memory", lambda tmp: "memory://", shared_url=False),
    BackendFactory("sqlite", lambda tmp: f"sqlite:///{tmp}/db.sqlite", shared_url=True),
    BackendFactory(
        "redis",
        _backend_redis.url,
        shared_url=True,
        skip=_backend_redis.skip,
        cleanup=_backend_redis.cleanup,
    ),
    BackendFactory(
        "postgres",
        _backend_postgres.url,
        shared_url=True,
        skip=_backend_postgres.skip,
        cleanup=_backend_postgres.cleanup,
    ),
]
