"""Run events, the run record, and the pure reducers that fold events into views.

An event is a plain dict (cheap to build, encoded once with orjson)::

    {"seq", "id", "ts", "type", "run_id", "flow", "step", "attempt", "data"}

The run record is the orchestrator's cache of a run (status, satisfied subscription tokens,
started/active/done steps, version); :func:`reduce_view` rebuilds what users see from events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "ACTIVE_STATUSES",
    "EVENT_TYPES",
    "TERMINAL_STATUSES",
    "Event",
    "NewEvent",
    "RunRecord",
    "reduce_state",
    "reduce_view",
]

Event = dict[str, Any]
RunStatus = Literal["running", "awaiting", "completed", "failed", "canceled", "stalled"]

TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "canceled", "stalled"})
ACTIVE_STATUSES: Final = frozenset({"running", "awaiting"})
EVENT_TYPES: Final = (
    "flow.started",
    "flow.completed",
    "flow.failed",
    "flow.canceled",
    "flow.stalled",
    "step.started",
    "step.completed",
    "step.retrying",
    "step.failed",
    "step.stalled",
    "emit",
    "log",
    "state",
    "await.registered",
    "await.resolved",
    "await.timed_out",
)
LIFECYCLE_TYPES: Final = frozenset(t for t in EVENT_TYPES if t.startswith(("flow.", "step.")))
TERMINAL_EVENTS: Final = {
    "flow.completed": "completed",
    "flow.failed": "failed",
    "flow.canceled": "canceled",
    "flow.stalled": "stalled",
}


@dataclass(slots=True)
class NewEvent:
    """An event before the backend gives it a ``seq``, ``id`` and ``ts``."""

    type: str
    data: Any = None
    step: str | None = None
    attempt: int | None = None


@dataclass(slots=True)
class RunRecord:
    run_id: str
    flow: str
    status: str
    input: Any
    started_at: float
    updated_at: float
    version: int = 0
    trigger: dict[str, Any] | None = None
    completed_at: float | None = None
    error: dict[str, Any] | None = None
    tokens: dict[str, Any] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)
    result: Any = None
    awaits: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def body(self) -> dict[str, Any]:
        """The parts stored as one JSON document (the rest are indexed columns)."""
        return {
            "input": self.input,
            "trigger": self.trigger,
            "error": self.error,
            "tokens": self.tokens,
            "started": self.started,
            "active": self.active,
            "done": self.done,
            "result": self.result,
            "awaits": self.awaits,
        }

    @classmethod
    def from_parts(
        cls,
        run_id: str,
        flow: str,
        status: str,
        version: int,
        started_at: float,
        updated_at: float,
        completed_at: float | None,
        body: dict[str, Any],
    ) -> RunRecord:
        return cls(
            run_id=run_id,
            flow=flow,
            status=status,
            version=version,
            started_at=started_at,
            updated_at=updated_at,
            completed_at=completed_at,
            **body,
        )

    def summary(self) -> dict[str, Any]:
        from flowtide._util.clock import iso

        return {
            "run_id": self.run_id,
            "flow": self.flow,
            "status": self.status,
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "trigger": self.trigger,
        }


def _new_step() -> dict[str, Any]:
    return {
        "status": "pending",
        "attempts": 0,
        "started_at": None,
        "completed_at": None,
        "result": None,
        "error": None,
    }


def reduce_view(events: list[Event]) -> dict[str, Any]:
    """Fold a run's events into its RunView (without ``run_id``/``flow`` if no events)."""
    view: dict[str, Any] = {
        "run_id": None,
        "flow": None,
        "status": "running",
        "input": None,
        "trigger": None,
        "started_at": None,
        "completed_at": None,
        "error": None,
        "result": None,
        "steps": {},
        "awaits": [],
    }
    steps: dict[str, dict[str, Any]] = view["steps"]
    for ev in events:
        kind, name, data = ev["type"], ev.get("step"), ev.get("data") or {}
        if view["run_id"] is None:
            view["run_id"], view["flow"] = ev["run_id"], ev["flow"]
        if kind == "flow.started":
            view["input"], view["trigger"] = data.get("input"), data.get("trigger")
            view["started_at"] = ev["ts"]
        elif kind in TERMINAL_EVENTS:
            view["status"] = TERMINAL_EVENTS[kind]
            view["completed_at"] = ev["ts"]
            view["error"] = data.get("error")
            view["result"] = data.get("result")
        elif kind.startswith("step.") and name is not None:
            _reduce_step(steps.setdefault(name, _new_step()), ev, data)
        elif kind.startswith("await."):
            _reduce_await(view, ev, data)
    return view


def _reduce_step(step: dict[str, Any], ev: Event, data: dict[str, Any]) -> None:
    kind = ev["type"]
    if kind == "step.started":
        step.update(status="running", attempts=ev.get("attempt") or step["attempts"] + 1)
        step["started_at"] = step["started_at"] or ev["ts"]
    elif kind == "step.completed":
        step.update(status="completed", completed_at=ev["ts"], result=data.get("result"))
        step["error"] = None
    elif kind == "step.retrying":
        step.update(status="retrying", error=data.get("error"))
    elif kind == "step.failed":
        step.update(status="failed", completed_at=ev["ts"], error=data.get("error"))
    elif kind == "step.stalled":
        step.update(status="stalled")


def _reduce_await(view: dict[str, Any], ev: Event, data: dict[str, Any]) -> None:
    kind = ev["type"]
    key = (ev.get("step"), data.get("position"))
    if kind == "await.registered":
        view["awaits"].append({"step": key[0], "status": "pending", **data})
        if view["status"] == "running":
            view["status"] = "awaiting"
        return
    for item in view["awaits"]:
        if (item["step"], item.get("position")) == key and item["status"] == "pending":
            item["status"] = "resolved" if kind == "await.resolved" else "timed_out"
    if view["status"] == "awaiting" and not any(a["status"] == "pending" for a in view["awaits"]):
        view["status"] = "running"


def reduce_state(
    events: list[Event], at: int | None = None, now: float | None = None
) -> dict[str, Any]:
    """The run's state as of event ``at`` (inclusive; None: all events)."""
    from datetime import datetime

    state: dict[str, Any] = {}
    expires: dict[str, float] = {}
    for ev in events:
        if at is not None and ev["seq"] > at:
            break
        if ev["type"] != "state":
            continue
        data = ev["data"]
        if data.get("op") == "delete":
            state.pop(data["key"], None)
            expires.pop(data["key"], None)
        else:
            state[data["key"]] = data.get("value")
            if data.get("ttl"):
                ts = datetime.fromisoformat(ev["ts"].replace("Z", "+00:00")).timestamp()
                expires[data["key"]] = ts + float(data["ttl"])
            else:
                expires.pop(data["key"], None)
    if now is not None:
        for key, deadline in expires.items():
            if deadline <= now:
                state.pop(key, None)
    return state
