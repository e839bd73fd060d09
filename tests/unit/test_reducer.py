"""reduce_view and reduce_state: pure folds over a run's events."""

from __future__ import annotations

from typing import Any

import pytest

from flowtide._util.clock import iso
from flowtide.events import reduce_state, reduce_view

T0 = 1_750_000_000.0
RUN = "01900000-0000-7000-8000-000000000000"


class History:
    """Builds events the way backends do: seq 1..n, ISO timestamps."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, data: Any = None, step: str | None = None, attempt=None, at=0.0):
        seq = len(self.events) + 1
        self.events.append(
            {
                "seq": seq,
                "id": f"{RUN}:{seq}",
                "ts": iso(T0 + at),
                "type": type_,
                "run_id": RUN,
                "flow": "orders",
                "step": step,
                "attempt": attempt,
                "data": data,
            }
        )
        return self


# -- reduce_view -----------------------------------------------------------------------------------


def test_empty_history_gives_an_empty_running_view():
    view = reduce_view([])
    assert view["run_id"] is None and view["flow"] is None
    assert view["status"] == "running"
    assert view["steps"] == {} and view["awaits"] == []


def test_a_completed_run_with_a_retried_step():
    h = History()
    h.add("flow.started", {"input": {"id": 1}, "trigger": {"name": "t", "type": "manual"}})
    h.add("step.started", None, "accept", 1, at=1)
    h.add("log", {"message": "hello"}, "accept", 1, at=1.5)
    h.add("emit", {"name": "accepted", "payload": {}}, "accept", 1, at=1.8)
    h.add("step.completed", {"result": {"ok": True}}, "accept", 1, at=2)
    h.add("step.started", None, "charge", 1, at=3)
    h.add("step.retrying", {"error": {"type": "E", "message": "boom"}}, "charge", 1, at=4)
    view_mid = reduce_view(h.events)
    assert view_mid["steps"]["charge"]["status"] == "retrying"
    assert view_mid["steps"]["charge"]["error"] == {"type": "E", "message": "boom"}
    h.add("step.started", None, "charge", 2, at=5)
    h.add("step.completed", {"result": 42}, "charge", 2, at=6)
    h.add("flow.completed", {"result": 42}, at=7)

    view = reduce_view(h.events)
    assert (view["run_id"], view["flow"], view["status"]) == (RUN, "orders", "completed")
    assert view["input"] == {"id": 1}
    assert view["trigger"] == {"name": "t", "type": "manual"}
    assert view["started_at"] == iso(T0)
    assert view["completed_at"] == iso(T0 + 7)
    assert view["result"] == 42 and view["error"] is None
    assert view["steps"]["accept"] == {
        "status": "completed",
        "attempts": 1,
        "started_at": iso(T0 + 1),
        "completed_at": iso(T0 + 2),
        "result": {"ok": True},
        "error": None,
    }
    charge = view["steps"]["charge"]
    assert (charge["status"], charge["attempts"], charge["result"], charge["error"]) == (
        "completed",
        2,
        42,
        None,
    )
    assert charge["started_at"] == iso(T0 + 3)  # the first attempt's start
    assert list(view["steps"]) == ["accept", "charge"]


def test_a_failed_run():
    h = History()
    h.add("flow.started", {"input": None, "trigger": None})
    h.add("step.started", None, "a", 1, at=1)
    h.add("step.failed", {"error": {"type": "KeyError", "message": "x"}}, "a", 1, at=2)
    error = {"step": "a", "type": "KeyError", "message": "x"}
    h.add("flow.failed", {"error": error}, at=2)
    view = reduce_view(h.events)
    assert view["status"] == "failed"
    assert view["error"] == error
    assert view["steps"]["a"]["status"] == "failed"
    assert view["steps"]["a"]["completed_at"] == iso(T0 + 2)
    assert view["steps"]["a"]["error"] == {"type": "KeyError", "message": "x"}


@pytest.mark.parametrize("terminal", ["canceled", "stalled"])
def test_canceled_and_stalled_runs(terminal):
    h = (
        History()
        .add("flow.started", {"input": 1, "trigger": None})
        .add("step.started", None, "a", 1)
    )
    if terminal == "stalled":
        h.add("step.stalled", {"reason": "r"}, "a")
    h.add(f"flow.{terminal}", {"reason": "r"}, at=9)
    view = reduce_view(h.events)
    assert view["status"] == terminal
    assert view["completed_at"] == iso(T0 + 9)
    assert view["steps"]["a"]["status"] == ("stalled" if terminal == "stalled" else "running")


def test_awaits_switch_the_status_between_awaiting_and_running():
    h = History().add("flow.started", {"input": None, "trigger": None})
    h.add("await.registered", {"position": "before", "type": "webhook"}, "approve")
    view = reduce_view(h.events)
    assert view["status"] == "awaiting"
    assert view["awaits"] == [
        {"step": "approve", "status": "pending", "position": "before", "type": "webhook"}
    ]
    h.add("await.registered", {"position": "after", "type": "time"}, "ship")
    h.add("await.resolved", {"position": "before"}, "approve")
    view = reduce_view(h.events)
    assert view["status"] == "awaiting"  # ship's await is still pending
    assert [a["status"] for a in view["awaits"]] == ["resolved", "pending"]
    h.add("await.timed_out", {"position": "after"}, "ship")
    view = reduce_view(h.events)
    assert view["status"] == "running"
    assert [a["status"] for a in view["awaits"]] == ["resolved", "timed_out"]


def test_reduce_view_of_a_prefix_is_the_view_at_that_time():
    h = History().add("flow.started", {"input": None, "trigger": None})
    h.add("step.started", None, "a", 1).add("step.completed", {"result": 1}, "a", 1)
    h.add("flow.completed", {"result": 1})
    assert reduce_view(h.events[:2])["steps"]["a"]["status"] == "running"
    assert reduce_view(h.events[:3])["status"] == "running"
    assert reduce_view(h.events)["status"] == "completed"


# -- reduce_state ----------------------------------------------------------------------------------


def state_history() -> History:
    h = History().add("flow.started", {"input": None, "trigger": None})
    h.add("state", {"op": "set", "key": "a", "value": 1}, "s", 1, at=1)  # seq 2
    h.add("state", {"op": "set", "key": "b", "value": {"x": [1]}}, "s", 1, at=2)  # seq 3
    h.add("log", {"message": "noise"}, "s", 1, at=2)  # seq 4
    h.add("state", {"op": "set", "key": "a", "value": 2}, "s", 1, at=3)  # seq 5
    h.add("state", {"op": "delete", "key": "b"}, "s", 1, at=4)  # seq 6
    h.add("state", {"op": "set", "key": "t", "value": "tmp", "ttl": 10}, "s", 1, at=5)  # 7
    return h


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (0, {}),
        (1, {}),
        (2, {"a": 1}),
        (3, {"a": 1, "b": {"x": [1]}}),
        (4, {"a": 1, "b": {"x": [1]}}),
        (5, {"a": 2, "b": {"x": [1]}}),
        (6, {"a": 2}),
        (7, {"a": 2, "t": "tmp"}),
        (None, {"a": 2, "t": "tmp"}),
        (999, {"a": 2, "t": "tmp"}),
    ],
)
def test_state_as_of_a_seq(at, expected):
    assert reduce_state(state_history().events, at) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (None, {"a": 2, "t": "tmp"}),
        (T0 + 5, {"a": 2, "t": "tmp"}),
        (T0 + 14.9, {"a": 2, "t": "tmp"}),
        (T0 + 15, {"a": 2}),
        (T0 + 1000, {"a": 2}),
    ],
)
def test_ttl_expiry_relative_to_now(now, expected):
    assert reduce_state(state_history().events, None, now) == expected


def test_ttl_is_cleared_by_a_later_set_without_ttl_and_by_delete():
    h = state_history()
    h.add("state", {"op": "set", "key": "t", "value": "kept"}, "s", 1, at=6)
    assert reduce_state(h.events, None, T0 + 1000) == {"a": 2, "t": "kept"}
    h.add("state", {"op": "delete", "key": "t"}, "s", 1, at=7)
    h.add("state", {"op": "set", "key": "t", "value": "new", "ttl": 1}, "s", 1, at=100)
    assert reduce_state(h.events, None, T0 + 100.5) == {"a": 2, "t": "new"}
    assert reduce_state(h.events, None, T0 + 101) == {"a": 2}


def test_state_as_of_an_earlier_seq_ignores_later_ttls():
    h = state_history()
    h.add("state", {"op": "set", "key": "a", "value": 3, "ttl": 1}, "s", 1, at=6)  # seq 8
    assert reduce_state(h.events, 7, T0 + 1000) == {"a": 2}
    assert reduce_state(h.events, 8, T0 + 1000) == {}
