"""Server-Sent Events: wire format and the two streams (one run; the lifecycle feed).

Streams wake on :meth:`Backend.wait_for_change` (a hint: they always re-read), send a comment
line after ``keepalive`` seconds of silence so proxies keep the connection open, and end when
the client disconnects (the response cancels them) or the server shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from flowtide._util.jsonutil import dumps
from flowtide.backends.base import Backend, BackendUnavailable
from flowtide.events import TERMINAL_EVENTS
from flowtide.registry import Registry
from flowtide.server.errors import ApiError
from flowtide.server.state import ServerState
from flowtide.server.stats import queue_overview

__all__ = ["KEEPALIVE", "feed_head", "feed_stream", "format_event", "parse_cursor", "run_stream"]

KEEPALIVE = b": keep-alive\n\n"
RETRY = b"retry: 2000\n\n"  # how long a browser's EventSource waits before reconnecting
_PAGE = 500


def format_event(data: Any, *, event: str | None = None, id: int | str | None = None) -> bytes:
    """One SSE message. orjson never emits a newline, so ``data`` is always one line."""
    head = b""
    if id is not None:
        head += b"id: %s\n" % str(id).encode()
    if event is not None:
        head += b"event: %s\n" % event.encode()
    return head + b"data: " + dumps(data) + b"\n\n"


def parse_cursor(value: str | None, name: str) -> int | None:
    """An integer cursor (``Last-Event-ID``, ``after``); 400 if it is not one."""
    if value is None or not value.strip():
        return None
    try:
        cursor = int(value.strip())
    except ValueError:
        raise ApiError(400, "invalid_cursor", f"{name} must be an integer, got {value!r}") from None
    if cursor < 0:
        raise ApiError(400, "invalid_cursor", f"{name} must be >= 0, got {cursor}")
    return cursor


async def feed_head(backend: Backend) -> int:
    """The global cursor of the newest lifecycle event (0 if none), found with a logarithmic
    number of one-row reads: ``read_feed(x, 1)`` is non-empty exactly while x < head."""

    async def before_head(x: int) -> bool:
        return bool(await backend.read_feed(x, 1))

    if not await before_head(0):
        return 0
    lo, hi = 0, 1
    while await before_head(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if await before_head(mid):
            lo = mid
        else:
            hi = mid
    return hi


async def _wait(backend: Backend, closing: asyncio.Event, timeout: float) -> None:
    if timeout <= 0 or closing.is_set():
        return
    change = asyncio.ensure_future(backend.wait_for_change(timeout))
    stop = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait((change, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        change.cancel()
        stop.cancel()


async def run_stream(
    state: ServerState, backend: Backend, run_id: str, after: int
) -> AsyncIterator[bytes]:
    """A run's events after seq ``after``, then live ones; ends after the terminal event."""
    loop = asyncio.get_running_loop()
    last = after
    quiet_since = loop.time()
    yield RETRY
    try:
        while not state.closing.is_set():
            record = await backend.get_run(run_id)
            if record is None:
                return
            events = await backend.read_events(run_id, after=last, limit=_PAGE)
            for event in events:
                yield format_event(event, event=event["type"], id=event["seq"])
                last = event["seq"]
                if event["type"] in TERMINAL_EVENTS:
                    return
            if len(events) == _PAGE:
                continue
            if record.terminal:
                return  # read before the events: the client already had the terminal event
            now = loop.time()
            if events:
                quiet_since = now
            elif now - quiet_since >= state.keepalive:
                yield KEEPALIVE
                quiet_since = now
            await _wait(backend, state.closing, quiet_since + state.keepalive - now)
    except BackendUnavailable:
        return


async def feed_stream(
    state: ServerState, backend: Backend, registry: Registry, after: int
) -> AsyncIterator[bytes]:
    """Every run's lifecycle events (``id`` is the global cursor) and a ``stats`` event with
    the queue overview whenever it changed, looked at every ``stats_interval`` seconds."""
    loop = asyncio.get_running_loop()
    last = after
    quiet_since = loop.time()
    stats_due = quiet_since
    sent_stats: list[dict[str, Any]] | None = None
    yield RETRY
    try:
        while not state.closing.is_set():
            items = await backend.read_feed(last, _PAGE)
            for gid, event in items:
                yield format_event(event, event=event["type"], id=gid)
                last = gid
            now = loop.time()
            if items:
                quiet_since = now
            if now >= stats_due:
                overview = await queue_overview(backend, registry)
                if overview != sent_stats:
                    yield format_event({"queues": overview}, event="stats")
                    sent_stats, quiet_since = overview, now
                stats_due = now + state.stats_interval
            if len(items) == _PAGE:
                continue
            if now - quiet_since >= state.keepalive:
                yield KEEPALIVE
                quiet_since = now
            timeout = min(stats_due, quiet_since + state.keepalive) - now
            await _wait(backend, state.closing, timeout)
    except BackendUnavailable:
        return
