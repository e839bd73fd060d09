"""A worker's periodic console line: queue depth (from the backend) and jobs/s it processed.

Backend-agnostic: it reads :meth:`Backend.queue_counts` and the worker's own ``processed``
counter, so it works the same on every backend. ``[worker] stats_interval`` sets the period
(0 disables it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from flowtide.backends.base import Backend

__all__ = ["format_stats", "report_stats"]

logger = logging.getLogger("flowtide.worker")


class _Counted(Protocol):
    processed: int


def format_stats(
    counts: dict[str, dict[str, int]], processed: int, rate: float, queues: set[str] | None
) -> str:
    """``stats: 1234 jobs done (456.7 jobs/s); queues: emails waiting=3 active=2 delayed=0``."""
    parts = []
    for name in sorted(counts):
        if queues is not None and name not in queues:
            continue
        c = counts[name]
        parts.append(
            f"{name} waiting={c.get('waiting', 0)} active={c.get('active', 0)} "
            f"delayed={c.get('delayed', 0)}"
        )
    depth = "; ".join(parts) if parts else "none"
    return f"stats: {processed} jobs done ({rate:.1f} jobs/s); queues: {depth}"


async def report_stats(
    backend: Backend, worker: _Counted, interval: float, queues: set[str] | None = None
) -> None:
    """Log one stats line every ``interval`` seconds until cancelled."""
    if interval <= 0:
        return
    last_n, last_t = worker.processed, time.monotonic()
    while True:
        await asyncio.sleep(interval)
        n, t = worker.processed, time.monotonic()
        rate = (n - last_n) / (t - last_t) if t > last_t else 0.0
        last_n, last_t = n, t
        try:
            counts = await backend.queue_counts()
        except Exception as exc:
            logger.warning("stats: reading queue counts failed: %s", exc)
            continue
        logger.info("%s", format_stats(counts, n, rate, queues))
