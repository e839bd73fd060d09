"""Pieces every backend implementation shares: event building, wake-up notification."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flowtide._util.clock import iso
from flowtide._util.jsonutil import loads
from flowtide.backends.base import Job
from flowtide.events import Event, NewEvent

LEASE_LOST = "the worker running this attempt stopped renewing its lease (worker lost)"


def build_event(run_id: str, flow: str, seq: int, new: NewEvent, ts: float) -> Event:
    return {
        "seq": seq,
        "id": f"{run_id}:{seq}",
        "ts": iso(ts),
        "type": new.type,
        "run_id": run_id,
        "flow": flow,
        "step": new.step,
        "attempt": new.attempt,
        "data": new.data,
    }


EVENT_FIELDS = ("seq", "id", "ts", "type", "run_id", "flow", "step", "attempt", "data")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exact_event(event: Mapping[str, Any]) -> Event:
    """An event to import (migration), with exactly the fields every backend stores."""
    return {name: event.get(name) for name in EVENT_FIELDS}


def epoch(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time as :func:`iso` writes it; ``iso(epoch(t)) == t``."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds()


def claim_events(job: Job, reclaimed: bool) -> list[NewEvent]:
    """The events a claim appends for a step job."""
    out = []
    if reclaimed:
        data: dict[str, Any] = {"error": {"type": "LeaseExpired", "message": LEASE_LOST}}
        data["next_attempt"] = job.attempt
        out.append(NewEvent("step.retrying", data, job.name, job.attempt - 1))
    out.append(NewEvent("step.started", None, job.name, job.attempt))
    return out


def unjson(text: str | bytes | None) -> Any:
    return None if text is None else loads(text)


def claimed_job(row: Any, worker: str, lease_until: float) -> Job:
    """The Job of a claimed row: (id, queue, name, run_id, flow, attempt, priority, run_at,
    created_at, key, input JSON, reclaims), the column order of the SQL backends' claims."""
    job_id, queue, name, run_id, flow, attempt, priority, run_at, created_at, key, inp = row[:11]
    return Job(
        id=job_id,
        queue=queue,
        name=name,
        input=unjson(inp),
        run_id=run_id,
        flow=flow,
        state="active",
        attempt=attempt,
        priority=priority,
        run_at=run_at,
        created_at=created_at,
        key=key,
        reclaims=row[11],
        worker=worker,
        lease_until=lease_until,
    )


def reclaim_exhausted_error(job: Job) -> dict[str, Any]:
    return {
        "type": "WorkerLost",
        "message": f"{LEASE_LOST}; gave up after {job.reclaims} lost leases",
    }


class Notifier:
    """Wakes every in-process waiter when something changed."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)
