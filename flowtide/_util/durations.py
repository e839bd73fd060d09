"""Duration parsing: ``"500ms"``, ``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` or a timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["Duration", "parse_duration", "seconds"]

Duration = str | int | float | timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: Duration) -> float:
    """Return the duration in seconds; raise ValueError with the offending text otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float | timedelta):
        number = value.total_seconds() if isinstance(value, timedelta) else float(value)
        if not number >= 0:  # negative, or NaN
            raise ValueError(f"invalid duration {value!r}: negative or not a number")
        return number
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(
            f"invalid duration {value!r}: expected a number and a unit (ms, s, m, h, d, w), "
            'for example "30s"'
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def seconds(value: Duration | None, default: float | None = None) -> float | None:
    """Like parse_duration, but None gives ``default``."""
    return default if value is None else parse_duration(value)
