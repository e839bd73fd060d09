"""Fixtures and helpers shared by every test directory. Keep this file small."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

WaitUntil = Callable[..., Awaitable[Any]]


async def _wait_until(
    cond: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01, what: str = ""
) -> Any:
    """Poll ``cond`` (sync or async) until it returns something truthy; return that value.

    Fails the test with an AssertionError after ``timeout`` seconds: never sleep-and-hope.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what or cond!r}")
        await asyncio.sleep(interval)


@pytest.fixture
def wait_until() -> WaitUntil:
    """``await wait_until(cond, timeout=5.0)``: wait on a condition with a bounded timeout."""
    return _wait_until
