"""Await declarations (``awaits.time``, ``.until``, ``.event``, ``.webhook``): plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flowtide._util.durations import Duration, parse_duration

__all__ = ["Await", "event", "time", "until", "webhook"]

OnTimeout = Literal["fail", "continue", "retry"]


@dataclass(frozen=True, slots=True)
class Await:
    type: Literal["time", "until", "event", "webhook"]
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    on_timeout: OnTimeout = "fail"
    max_retries: int = 0
    schema: Any = None


def _timeout(value: Duration | None) -> float | None:
    return None if value is None else parse_duration(value)


def time(duration: Duration) -> Await:
    return Await("time", {"seconds": parse_duration(duration)})


def until(cron: str, *, tz: str = "UTC") -> Await:
    return Await("until", {"cron": cron, "tz": tz})


def event(
    name: str,
    *,
    match: dict[str, str] | None = None,
    timeout: Duration | None = None,
    on_timeout: OnTimeout = "fail",
    max_retries: int = 0,
) -> Await:
    options = {"name": name, "match": dict(match or {})}
    return Await("event", options, _timeout(timeout), on_timeout, max_retries)


def webhook(
    *,
    method: str = "POST",
    schema: Any = None,
    timeout: Duration | None = None,
    on_timeout: OnTimeout = "fail",
    max_retries: int = 0,
) -> Await:
    options = {"method": method.upper()}
    return Await("webhook", options, _timeout(timeout), on_timeout, max_retries, schema)
