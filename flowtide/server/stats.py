"""Aggregates computed from backend reads: queue overviews and run counts per flow."""

from __future__ import annotations

from typing import Any

from flowtide._util.clock import iso
from flowtide.backends.base import Backend
from flowtide.events import ACTIVE_STATUSES, TERMINAL_STATUSES
from flowtide.registry import Registry

__all__ = ["QUEUE_STATES", "RUN_STATUSES", "STATS_WINDOW", "flow_stats", "queue_overview"]

QUEUE_STATES = ("waiting", "active", "delayed", "completed", "failed", "canceled")
RUN_STATUSES = ("running", "awaiting", "completed", "failed", "canceled", "stalled")
assert set(RUN_STATUSES) == ACTIVE_STATUSES | TERMINAL_STATUSES
STATS_WINDOW = 1000  # run counts look at this many of a flow's most recent runs
_PAGE = 500


async def queue_overview(backend: Backend, registry: Registry) -> list[dict[str, Any]]:
    """Every queue the registry or the backend knows, with job counts, its paused flag and
    ``throughput``: jobs completed in about the last minute, or None where the backend does
    not keep that number (an optional ``completed_last_minute`` operation)."""
    counts = await backend.queue_counts()
    paused = await backend.paused_queues()
    names = sorted(set(registry.queues()) | set(counts) | paused)
    recent: dict[str, int] | None = None
    reader = getattr(backend, "completed_last_minute", None)
    if reader is not None:
        recent = await reader()
    return [
        {
            "name": name,
            "counts": {state: counts.get(name, {}).get(state, 0) for state in QUEUE_STATES},
            "paused": name in paused,
            "throughput": None if recent is None else recent.get(name, 0),
        }
        for name in names
    ]


async def known_queues(backend: Backend, registry: Registry) -> set[str]:
    return (
        set(registry.queues()) | set(await backend.queue_counts()) | await backend.paused_queues()
    )


async def flow_stats(backend: Backend, flow: str, window: int = STATS_WINDOW) -> dict[str, Any]:
    """Counts of the flow's most recent ``window`` runs by status.

    ``complete`` is False when the flow has more runs than the window: the counts then cover
    only the newest ones (the backend protocol has no count operation; paging all history on
    every request would not scale)."""
    by_status = dict.fromkeys(RUN_STATUSES, 0)
    seen = 0
    last_started: float | None = None
    cursor: str | None = None
    complete = True
    while True:
        page = await backend.list_runs(flow=flow, limit=min(_PAGE, window - seen), cursor=cursor)
        for record in page.items:
            by_status[record.status] = by_status.get(record.status, 0) + 1
            if last_started is None:
                last_started = record.started_at
        seen += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        if seen >= window:
            complete = False
            break
    return {
        "runs": seen,
        "by_status": by_status,
        "last_started_at": iso(last_started),
        "complete": complete,
    }
