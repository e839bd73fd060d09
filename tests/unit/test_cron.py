"""Cron with time zones, as a table: DST gaps fire once at the next valid instant, DST folds
fire once at their first occurrence, in every kind of zone (30- and 45-minute offsets,
a two-hour shift, the southern hemisphere)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowtide._util.cron import check_cron, next_cron, next_interval


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(expr: str, tz: str, start: str, count: int) -> list[str]:
    out, at = [], utc(start)
    for _ in range(count):
        at = next_cron(expr, tz, at)
        out.append(at.strftime("%Y-%m-%d %H:%M:%S"))
    return out


CASES = [
    # (what, expr, tz, start UTC, expected UTC instants)
    (
        "plain UTC",
        "*/15 * * * *",
        "UTC",
        "2026-01-01 00:07",
        ["2026-01-01 00:15:00", "2026-01-01 00:30:00"],
    ),
    (
        "six fields: seconds",
        "*/20 * * * * *",
        "UTC",
        "2026-01-01 00:00:05",
        ["2026-01-01 00:00:20", "2026-01-01 00:00:40"],
    ),
    # Europe/Berlin: 2026-03-29 02:00 -> 03:00 (gap), 2026-10-25 03:00 -> 02:00 (fold)
    (
        "Berlin gap",
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28 12:00",
        ["2026-03-29 01:00:00", "2026-03-30 00:30:00"],
    ),
    (
        "Berlin fold daily",
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24 12:00",
        ["2026-10-25 00:30:00", "2026-10-26 01:30:00"],
    ),
    (
        "Berlin fold half-hourly",
        "*/30 * * * *",
        "Europe/Berlin",
        "2026-10-24 23:50",
        ["2026-10-25 00:00:00", "2026-10-25 00:30:00", "2026-10-25 02:00:00"],
    ),
    (
        "Berlin working days 9:00",
        "0 9 * * 1-5",
        "Europe/Berlin",
        "2026-11-27 09:00",
        ["2026-11-30 08:00:00", "2026-12-01 08:00:00"],
    ),
    # America/New_York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00
    (
        "New York gap",
        "0 2 * * *",
        "America/New_York",
        "2026-03-07 12:00",
        ["2026-03-08 07:00:00", "2026-03-09 06:00:00"],
    ),
    (
        "New York fold",
        "30 1 * * *",
        "America/New_York",
        "2026-10-31 12:00",
        ["2026-11-01 05:30:00", "2026-11-02 06:30:00"],
    ),
    # Australia/Lord_Howe: a 30-minute shift; 2026-10-04 02:00 -> 02:30, 2026-04-05 02:00 -> 01:30
    (
        "Lord Howe gap",
        "0 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03 00:00",
        ["2026-10-03 15:30:00", "2026-10-04 15:00:00"],
    ),
    (
        "Lord Howe fold",
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04 00:00",
        ["2026-04-04 14:45:00", "2026-04-05 15:15:00"],
    ),
    # Pacific/Chatham (+12:45/+13:45): 2026-09-27 02:45 -> 03:45, 2026-04-05 03:45 -> 02:45
    (
        "Chatham gap",
        "0 3 * * *",
        "Pacific/Chatham",
        "2026-09-26 00:00",
        ["2026-09-26 14:00:00", "2026-09-27 13:15:00"],
    ),
    (
        "Chatham fold",
        "0 3 * * *",
        "Pacific/Chatham",
        "2026-04-04 00:00",
        ["2026-04-04 13:15:00", "2026-04-05 14:15:00"],
    ),
    # Antarctica/Troll: a two-hour shift, +00 -> +02 on 2026-03-29 01:00, back on 2026-10-25 03:00
    (
        "Troll gap",
        "30 1 * * *",
        "Antarctica/Troll",
        "2026-03-28 12:00",
        ["2026-03-29 01:00:00", "2026-03-29 23:30:00"],
    ),
    (
        "Troll fold",
        "30 2 * * *",
        "Antarctica/Troll",
        "2026-10-24 12:00",
        ["2026-10-25 00:30:00", "2026-10-26 02:30:00"],
    ),
]


@pytest.mark.parametrize(
    ("what", "expr", "tz", "start", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_next_occurrences(what: str, expr: str, tz: str, start: str, expected: list[str]) -> None:
    assert run(expr, tz, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "tz", "message"),
    [
        ("61 * * * *", "UTC", "invalid cron expression"),
        ("* * *", "UTC", "invalid cron expression"),
        ("0 0 30 2 *", "UTC", "invalid cron expression"),
        ("0 9 * * *", "Mars/Olympus", "invalid time zone"),
    ],
)
def test_invalid_expressions_and_zones(expr: str, tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_cron(expr, tz)


@pytest.mark.parametrize(
    ("every", "anchor", "after", "expected"),
    [
        (30.0, 100.0, 100.0, 130.0),
        (30.0, 100.0, 129.9, 130.0),
        (30.0, 100.0, 130.0, 160.0),
        (30.0, 100.0, 50.0, 100.0),
        (0.5, 0.0, 10.2, 10.5),
    ],
)
def test_next_interval(every: float, anchor: float, after: float, expected: float) -> None:
    assert next_interval(every, anchor, after) == pytest.approx(expected)
