"""parse_duration and seconds: every accepted spelling, and the errors for everything else."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from flowtide._util.durations import parse_duration, seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("30s", 30.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        (" 10s ", 10.0),
        ("10 s", 10.0),
        ("0.25h", 900.0),
        (timedelta(minutes=2), 120.0),
        (timedelta(milliseconds=1500), 1.5),
        (timedelta(0), 0.0),
        (5, 5.0),
        (0, 0.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(value, expected):
    result = parse_duration(value)
    assert isinstance(result, float)
    assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "30",
        "s",
        "abc",
        "5 sec",
        "5mins",
        "1h30m",
        "-1s",
        "+1s",
        "1.2.3s",
        "5M",
        "5S",
        ".5s",
        -1,
        -0.5,
        True,
        False,
        math.nan,
        timedelta(seconds=-5),
    ],
)
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


def test_the_error_explains_the_expected_format():
    with pytest.raises(ValueError, match=r'unit \(ms, s, m, h, d, w\).*"30s"'):
        parse_duration("thirty seconds")


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [(None, None, None), (None, 5.0, 5.0), ("2s", 5.0, 2.0), (timedelta(seconds=3), None, 3.0)],
)
def test_seconds(value, default, expected):
    assert seconds(value, default) == expected
