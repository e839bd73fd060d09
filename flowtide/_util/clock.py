"""Wall-clock helpers. Times are stored as float epoch seconds and shown as ISO 8601 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["iso", "now"]


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
