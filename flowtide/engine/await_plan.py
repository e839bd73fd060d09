"""Pure await bookkeeping: what registering or closing an await adds to a transition.

An await lives in three places, all written in the same atomic commit:
- the run record's ``awaits`` (the source of truth: status, deadline, withheld tokens);
- records: ``awaits`` (pending awaits of every run, for ``GET /api/awaits``),
  ``await_event:{name}`` (event awaits by event name) and ``await_tokens`` (webhook tokens);
- a timer ``await:{run}:{step}:{position}`` for its deadline (resolution or timeout).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flowtide._util.clock import iso
from flowtide._util.cron import next_cron
from flowtide.backends.base import RecordOp, Timer, Transition
from flowtide.definitions.awaits import Await
from flowtide.events import NewEvent, RunRecord

__all__ = [
    "AWAITS",
    "DEFAULT_TIMEOUT",
    "TOKENS",
    "await_id",
    "close",
    "event_collection",
    "lookup",
    "matches",
    "pending",
    "register",
    "timer_id",
]

AWAITS = "awaits"
TOKENS = "await_tokens"
DEFAULT_TIMEOUT = 86400.0  # webhook and event awaits without a timeout give up after a day
TOKEN_TTL = 30 * 86400.0  # a token answers 410 (not 404) this long after its await was set


def await_id(run_id: str, step: str, position: str) -> str:
    return f"{run_id}:{step}:{position}"


def timer_id(aid: str) -> str:
    return f"await:{aid}"


def event_collection(name: str) -> str:
    return f"await_event:{name}"


def pending(record: RunRecord) -> list[dict[str, Any]]:
    return [a for a in record.awaits.values() if a["status"] == "pending"]


def lookup(path: str, root: Any) -> Any:
    """The value at dot path ``path`` in ``root`` (None where it does not lead anywhere)."""
    value = root
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _match_values(match: dict[str, Any], step_input: Any, run_input: Any) -> dict[str, Any]:
    """``{"order_id": "input.order_id"}`` -> ``{"order_id": <the step input's order_id>}``;
    ``run.input.x`` reads the run's input; any other value is matched literally."""
    out: dict[str, Any] = {}
    for path, source in match.items():
        if isinstance(source, str) and source.startswith("input."):
            out[path] = lookup(source[6:], step_input)
        elif isinstance(source, str) and source.startswith("run.input."):
            out[path] = lookup(source[10:], run_input)
        else:
            out[path] = source
    return out


def matches(payload: Any, match: dict[str, Any]) -> bool:
    return all(lookup(path, payload) == value for path, value in match.items())


def _deadline(decl: Await, ts: float) -> tuple[float, str]:
    """When the await's timer acts, and whether it then resolves or times out."""
    timeout_at = None if decl.timeout is None else ts + decl.timeout
    if decl.type == "time":
        due = ts + float(decl.options["seconds"])
    elif decl.type == "until":
        after = datetime.fromtimestamp(ts, UTC)
        due = next_cron(decl.options["cron"], decl.options["tz"], after).timestamp()
    elif timeout_at is None:
        return ts + DEFAULT_TIMEOUT, "timeout"
    else:
        return timeout_at, "timeout"
    if timeout_at is not None and timeout_at < due:
        return timeout_at, "timeout"
    return due, "resolve"


def register(
    t: Transition,
    record: RunRecord,
    step: str,
    position: str,
    decl: Await,
    ts: float,
    base_url: str,
    *,
    step_input: Any = None,
    withheld: dict[str, Any] | None = None,
    retries: int = 0,
    token: str | None = None,
) -> dict[str, Any]:
    """Open an await on ``record`` (already bumped) and add its writes to ``t``."""
    aid = await_id(record.run_id, step, position)
    due, action = _deadline(decl, ts)
    data: dict[str, Any] = {"await_id": aid, "position": position, "type": decl.type}
    entry: dict[str, Any] = {
        "await_id": aid,
        "step": step,
        "position": position,
        "type": decl.type,
        "status": "pending",
        "registered_at": ts,
        "due": due,
        "action": action,
        "retries": retries,
        "input": step_input,
        "withheld": withheld,
    }
    if decl.type == "time":
        data["delay_ms"] = round(float(decl.options["seconds"]) * 1000)
    elif decl.type == "until":
        data.update(cron=decl.options["cron"], tz=decl.options["tz"])
        if action == "resolve":
            data["next_occurrence"] = iso(due)
    elif decl.type == "event":
        match = _match_values(decl.options.get("match") or {}, step_input, record.input)
        data.update(event=decl.options["name"], match=match)
        entry["event"], entry["match"] = decl.options["name"], match
        t.records.append(
            RecordOp(
                event_collection(decl.options["name"]),
                aid,
                {"run_id": record.run_id, "match": match, "registered_at": ts},
            )
        )
    elif decl.type == "webhook":
        token = token or secrets.token_urlsafe(24)
        entry["token"], entry["method"] = token, decl.options.get("method", "POST")
        data.update(url=f"{base_url.rstrip('/')}/hooks/await/{token}", method=entry["method"])
        t.records.append(
            RecordOp(TOKENS, token, {"run_id": record.run_id, "await_id": aid}, ts + TOKEN_TTL)
        )
    data["deadline"] = iso(due)
    if retries:
        data["retry"] = retries
    entry["data"] = data
    record.awaits[aid] = entry
    summary = {
        "await_id": aid,
        "run_id": record.run_id,
        "flow": record.flow,
        "step": step,
        "position": position,
        "type": decl.type,
        "deadline": iso(due),
        "url": data.get("url"),
        "registered_at": iso(ts),
    }
    t.records.append(RecordOp(AWAITS, aid, summary))
    t.timers.append(Timer(timer_id(aid), due, "await", {"run_id": record.run_id, "await_id": aid}))
    t.events.append(NewEvent("await.registered", data, step))
    return entry


def close(t: Transition, entry: dict[str, Any], status: str) -> None:
    """Mark a pending await ``status`` and drop its index entries and timer."""
    entry["status"] = status
    aid = entry["await_id"]
    t.records.append(RecordOp(AWAITS, aid, None))
    if entry["type"] == "event":
        t.records.append(RecordOp(event_collection(entry["event"]), aid, None))
    t.cancel_timers.append(timer_id(aid))
