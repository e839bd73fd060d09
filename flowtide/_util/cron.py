"""Cron and interval time maths: pure functions of (expression, time zone, instant).

DST policy (documented in docs/guide.md and pinned by table-driven tests):
- a local time that does not exist (clocks jump forward) fires once, at the next valid instant;
- a local time that happens twice (clocks fall back) fires once, at its first occurrence.
Five-field expressions fire on the minute; a sixth, leading field gives seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = ["check_cron", "next_cron", "next_interval", "zone"]

_MAX_SKIPS = 1000  # repeated local times skipped in a row; far more than any DST fold holds


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone ``tz``; ValueError naming it if it does not exist."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"invalid time zone {tz!r}") from None


def check_cron(expr: str, tz: str = "UTC") -> None:
    """Raise ValueError (with the reason) unless ``expr`` is a valid cron that can fire."""
    next_cron(expr, tz, datetime(2000, 1, 1, tzinfo=UTC))


def next_cron(expr: str, tz: str, after: datetime) -> datetime:
    """The first occurrence of ``expr`` in zone ``tz`` strictly after ``after``, in UTC."""
    local = after.astimezone(zone(tz))
    try:
        occurrences = CronSim(expr, local)
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None
    for _ in range(_MAX_SKIPS):
        try:
            candidate = next(occurrences)
        except StopIteration:
            raise ValueError(f"cron expression {expr!r} never fires") from None
        if candidate.fold == 1 and _repeated(candidate):
            continue  # the second pass through a repeated local time
        return candidate.astimezone(UTC)
    raise ValueError(f"cron expression {expr!r} found no occurrence after {after.isoformat()}")


def _repeated(local: datetime) -> bool:
    """True if this wall-clock time also happened earlier (it lies in a DST fold)."""
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def next_interval(every: float, anchor: float, after: float) -> float:
    """The first instant ``anchor + k * every`` (k a whole number) strictly after ``after``."""
    if every <= 0:
        raise ValueError("an interval must be positive")
    if after < anchor:
        return anchor
    return anchor + (math.floor((after - anchor) / every) + 1) * every
