"""Backoff.delay: fixed, exponential with a cap, and the bounds of equal jitter."""

from __future__ import annotations

import pytest

from flowtide.definitions.backoff import DEFAULT_BACKOFF, Backoff

NO_JITTER_EXP = Backoff.exponential("1s", max="10s", jitter=False)


@pytest.mark.parametrize(
    ("backoff", "attempt", "expected"),
    [
        (Backoff.fixed("2s"), 1, 2.0),
        (Backoff.fixed("2s"), 2, 2.0),
        (Backoff.fixed("2s"), 50, 2.0),
        (Backoff.fixed("500ms"), 3, 0.5),
        (NO_JITTER_EXP, 0, 1.0),
        (NO_JITTER_EXP, 1, 1.0),
        (NO_JITTER_EXP, 2, 2.0),
        (NO_JITTER_EXP, 3, 4.0),
        (NO_JITTER_EXP, 4, 8.0),
        (NO_JITTER_EXP, 5, 10.0),
        (NO_JITTER_EXP, 60, 10.0),
        (NO_JITTER_EXP, 5000, 10.0),
        (Backoff.exponential("100ms", max=None, factor=3, jitter=False), 4, 2.7),
        (Backoff.exponential("1s", max=None, jitter=False), 11, 1024.0),
        (Backoff.exponential("1s", max="1m", factor=1, jitter=False), 9, 1.0),
    ],
)
def test_delay_without_jitter(backoff, attempt, expected):
    assert backoff.delay(attempt) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("backoff", "attempt", "raw"),
    [
        (Backoff.fixed("4s", jitter=True), 1, 4.0),
        (Backoff.exponential("1s", max="10s"), 1, 1.0),
        (Backoff.exponential("1s", max="10s"), 3, 4.0),
        (Backoff.exponential("1s", max="10s"), 9, 10.0),
        (DEFAULT_BACKOFF, 20, 300.0),
    ],
)
def test_jitter_bounds(backoff, attempt, raw):
    assert backoff.jitter
    assert backoff.delay(attempt, rand=0.0) == pytest.approx(raw / 2)
    assert backoff.delay(attempt, rand=1.0) == pytest.approx(raw)
    assert backoff.delay(attempt, rand=0.5) == pytest.approx(raw * 0.75)
    for _ in range(200):
        assert raw / 2 <= backoff.delay(attempt) <= raw


def test_defaults():
    assert Backoff.fixed("1s").jitter is False
    assert Backoff.exponential().jitter is True
    assert Backoff.exponential().max == 600.0
    assert (DEFAULT_BACKOFF.base, DEFAULT_BACKOFF.max) == (1.0, 300.0)


@pytest.mark.parametrize("factor", [0.5, 0, -2])
def test_exponential_factor_below_one_is_rejected(factor):
    with pytest.raises(ValueError, match="factor"):
        Backoff.exponential("1s", factor=factor)


def test_invalid_durations_are_rejected():
    with pytest.raises(ValueError):
        Backoff.fixed("soon")
    with pytest.raises(ValueError):
        Backoff.exponential("1s", max="forever")
