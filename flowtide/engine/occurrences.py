"""When a schedule trigger fires: pure functions of its definition and an instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flowtide._util.cron import next_cron, next_interval
from flowtide.backends.base import Timer

__all__ = ["MISSED_AFTER", "SCHEDULES", "next_at", "next_timer", "timer_id"]

SCHEDULES = "schedules"  # records: per schedule, its last and next occurrence and last runs
MISSED_AFTER = 30.0  # an occurrence this late counts as missed (downtime), not merely delayed


def timer_id(name: str) -> str:
    return f"schedule:{name}"


def next_at(doc: dict[str, Any], after: float) -> float:
    """The schedule's first occurrence strictly after ``after``."""
    opts = doc["options"]
    if opts.get("cron"):
        moment = datetime.fromtimestamp(after, UTC)
        return next_cron(opts["cron"], opts["tz"], moment).timestamp()
    return next_interval(float(opts["every"]), _anchor(doc), after)


def next_timer(doc: dict[str, Any], after: float) -> Timer:
    at = next_at(doc, after)
    data = {"name": doc["name"], "at": at, "def_hash": doc["def_hash"]}
    return Timer(timer_id(doc["name"]), at, "schedule", data)


def _anchor(doc: dict[str, Any]) -> float:
    stamp = doc.get("updated_at") or doc.get("created_at")
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
