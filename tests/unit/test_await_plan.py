"""Pure await helpers: dot paths, event matching, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flowtide import awaits
from flowtide.engine import await_plan as aw


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("a", {"a": 1}, 1),
        ("a.b", {"a": {"b": [1, 2]}}, [1, 2]),
        ("a.b.1", {"a": {"b": [1, 2]}}, 2),
        ("a.b.5", {"a": {"b": [1, 2]}}, None),
        ("a.x", {"a": 3}, None),
        ("missing", None, None),
    ],
)
def test_lookup(path: str, root: Any, expected: Any) -> None:
    assert aw.lookup(path, root) == expected


@pytest.mark.parametrize(
    ("match", "step_input", "run_input", "expected"),
    [
        ({"order_id": "input.order_id"}, {"order_id": 7}, None, {"order_id": 7}),
        ({"o": "run.input.id"}, {}, {"id": "r"}, {"o": "r"}),
        ({"kind": "paid", "n": 3}, {}, None, {"kind": "paid", "n": 3}),
        ({"x": "input.absent"}, {}, None, {"x": None}),
    ],
)
def test_match_values(
    match: dict[str, Any], step_input: Any, run_input: Any, expected: dict[str, Any]
) -> None:
    assert aw._match_values(match, step_input, run_input) == expected


@pytest.mark.parametrize(
    ("payload", "match", "expected"),
    [
        ({"order_id": 7, "x": 1}, {"order_id": 7}, True),
        ({"order_id": 8}, {"order_id": 7}, False),
        ({"a": {"b": 1}}, {"a.b": 1}, True),
        (None, {"a": 1}, False),
        ({"anything": 1}, {}, True),
    ],
)
def test_matches(payload: Any, match: dict[str, Any], expected: bool) -> None:
    assert aw.matches(payload, match) is expected


T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()  # Berlin springs forward at 01:00 UTC


@pytest.mark.parametrize(
    ("decl", "due", "action"),
    [
        (awaits.time("10m"), T0 + 600, "resolve"),
        (awaits.webhook(), T0 + aw.DEFAULT_TIMEOUT, "timeout"),
        (awaits.webhook(timeout="1h"), T0 + 3600, "timeout"),
        (awaits.event("e", timeout="5m"), T0 + 300, "timeout"),
        # 02:30 local does not exist on that day in Berlin: the next valid instant is 03:00 CEST
        (awaits.until("30 2 * * *", tz="Europe/Berlin"), T0 + 1800, "resolve"),
    ],
)
def test_deadlines(decl: awaits.Await, due: float, action: str) -> None:
    assert aw._deadline(decl, T0) == (due, action)


def test_a_timeout_shorter_than_a_time_await_wins() -> None:
    decl = awaits.Await("time", {"seconds": 600.0}, timeout=60.0)
    assert aw._deadline(decl, T0) == (T0 + 60, "timeout")
