"""Options of the Redis backend, read from the query of its URL.

``redis://HOST:PORT/DB?prefix=flowtide:&keep_completed=1000&completed_ttl=1d&...``: the
flowtide options below are removed from the URL handed to redis-py (which keeps its own, e.g.
``?socket_timeout=5``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flowtide._util.durations import parse_duration
from flowtide.backends.base import BackendUnavailable
from flowtide.backends.redis.keys import DEFAULT_PREFIX

__all__ = ["RedisOptions", "parse_url"]


@dataclass(frozen=True, slots=True)
class RedisOptions:
    redis_url: str
    prefix: str = DEFAULT_PREFIX
    keep_completed: int = 10_000  # completed jobs kept per queue (-1: no limit)
    keep_failed: int = 100_000  # failed and canceled jobs kept per queue (-1: no limit)
    completed_ttl: float | None = 24 * 3600.0  # completed jobs are deleted after this age
    failed_ttl: float | None = 7 * 24 * 3600.0
    run_ttl: float | None = 7 * 24 * 3600.0  # ended runs (history, state) after this age
    feed_max: int = 100_000  # lifecycle feed entries kept (approximately)
    retry_for: float = 300.0  # how long operations retry while Redis is unreachable
    connect_timeout: float = 5.0
    max_connections: int = 100  # connections per process; more callers wait for one


_INTS = ("keep_completed", "keep_failed", "feed_max", "max_connections")
_AGES = ("completed_ttl", "failed_ttl", "run_ttl")
_SECONDS = ("retry_for", "connect_timeout")


def parse_url(url: str) -> RedisOptions:
    parts = urlsplit(url)
    ours: dict[str, object] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        try:
            if key == "prefix":
                ours[key] = value
            elif key in _INTS:
                ours[key] = int(value)
            elif key in _AGES:
                ours[key] = None if value in ("", "0", "never") else _seconds(value)
            elif key in _SECONDS:
                ours[key] = _seconds(value)
            else:
                rest.append((key, value))
        except ValueError:
            raise BackendUnavailable(f"backend URL {url!r}: invalid {key}={value!r}") from None
    redis_url = urlunsplit(parts._replace(query=urlencode(rest)))
    return RedisOptions(redis_url, **ours)  # type: ignore[arg-type]


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return parse_duration(value)
