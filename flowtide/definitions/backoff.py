"""Retry backoff: plain data plus one pure function of the attempt number."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from flowtide._util.durations import Duration, parse_duration

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    kind: Literal["fixed", "exponential"]
    base: float
    max: float | None = None
    factor: float = 2.0
    jitter: bool = True

    @classmethod
    def fixed(cls, delay: Duration, *, jitter: bool = False) -> Backoff:
        return cls("fixed", parse_duration(delay), jitter=jitter)

    @classmethod
    def exponential(
        cls,
        base: Duration = "1s",
        *,
        max: Duration | None = "10m",
        factor: float = 2.0,
        jitter: bool = True,
    ) -> Backoff:
        if factor < 1:
            raise ValueError("Backoff.exponential factor must be >= 1")
        cap = None if max is None else parse_duration(max)
        return cls("exponential", parse_duration(base), cap, factor, jitter)

    def delay(self, failed_attempt: int, rand: float | None = None) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed.

        Exponential: base * factor**(attempt-1), capped at ``max``. Jitter ("equal jitter")
        keeps at least half the delay so retries stay spread out but never collapse to zero.
        """
        if self.kind == "fixed":
            raw = self.base
        else:
            try:
                raw = self.base * self.factor ** max(failed_attempt - 1, 0)
            except OverflowError:  # a very high attempt number: the cap (if any) applies
                raw = math.inf
        if self.max is not None:
            raw = min(raw, self.max)
        if not self.jitter:
            return raw
        r = random.random() if rand is None else rand
        return raw / 2 + raw / 2 * r


DEFAULT_BACKOFF = Backoff.exponential("1s", max="5m")
