"""The data types of :mod:`flowtide.runtimes.child`: what an invocation is, what it yields,
how a child fails, and the bookkeeping of one invocation in flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from flowtide.runtimes.protocol import error_body


class Host(Protocol):
    """What the parent offers the child during one invocation (implemented by the engine)."""

    async def request(self, type: str, message: dict[str, Any]) -> Any: ...

    def log(self, level: str, message: str, fields: dict[str, Any]) -> None: ...

    def output(self, stream: str, line: str) -> None: ...


@dataclass(slots=True)
class Invocation:
    handler: str
    input: Any
    context: dict[str, Any]
    timeout: float | None = None


@dataclass(slots=True)
class Outcome:
    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True


class ChildFailed(Exception):
    """The child cannot be used any more (it crashed, hung or broke the protocol)."""

    def __init__(self, type: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.type, self.retryable = type, retryable

    def outcome(self) -> Outcome:
        return Outcome(False, error=error_body(self.type, str(self)), retryable=self.retryable)


class _Run:
    """One invocation in flight on a child."""

    __slots__ = ("abandoned", "deadline", "fut", "grace", "host", "id", "timed_out", "timeout")

    def __init__(
        self, id: str, host: Host, fut: asyncio.Future[Outcome], timeout: float | None
    ) -> None:
        self.id, self.host, self.fut, self.timeout = id, host, fut, timeout
        self.deadline: asyncio.TimerHandle | None = None
        self.grace: asyncio.TimerHandle | None = None
        self.timed_out = False  # the deadline passed and ``cancel`` was sent
        self.abandoned = False  # the awaiting task was cancelled (the worker is stopping)


def _handler_outcome(body: dict[str, Any]) -> Outcome:
    error = {
        "type": str(body.get("type") or "Error"),
        "message": str(body.get("message") or body.get("type") or "error"),
    }
    if body.get("stack"):
        error["traceback"] = str(body["stack"])
    return Outcome(False, error=error, retryable=body.get("retryable") is not False)
