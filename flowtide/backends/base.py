"""The backend seam: a handful of operations every storage engine implements.

Every backend passes the conformance suite in ``tests/backends``. The engine never does more
than these operations; anything richer is built above them.

Atomicity (DESIGN A10): :meth:`Backend.commit` applies each item's :class:`Transition` as one
atomic unit. An item carries a pure ``decide`` function; the backend loads the run record,
calls ``decide(record)`` and applies the result. SQL backends call it inside their write
transaction; optimistic backends (Redis) check the record's ``version`` and call ``decide``
again on a conflict, which is why ``decide`` must be pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from flowtide.events import Event, NewEvent, RunRecord

__all__ = [
    "JOB_STATES",
    "Backend",
    "BackendUnavailable",
    "CommitItem",
    "Job",
    "JobUpdate",
    "Page",
    "RecordOp",
    "RunImport",
    "StateItems",
    "StateOp",
    "Timer",
    "Transition",
]

JobState = Literal["waiting", "delayed", "active", "completed", "failed", "canceled"]
JOB_STATES: tuple[JobState, ...] = (
    "waiting",
    "delayed",
    "active",
    "completed",
    "failed",
    "canceled",
)
MAX_RECLAIMS = 3  # a job whose worker died this many times fails: it is probably what kills it


class BackendUnavailable(Exception):
    """The backend cannot be reached (wrong URL, server down, file not writable)."""


@dataclass(slots=True)
class Job:
    id: str
    queue: str
    name: str  # step name or function name
    input: Any = None
    run_id: str | None = None
    flow: str | None = None
    state: JobState = "waiting"
    attempt: int = 0  # attempts started so far; claim increments it
    priority: int = 0
    run_at: float = 0.0
    created_at: float = 0.0
    key: str | None = None
    error: Any = None
    result: Any = None
    reclaims: int = 0
    lease_until: float | None = None
    worker: str | None = None
    finished_at: float | None = None

    @property
    def kind(self) -> Literal["step", "function"]:
        return "step" if self.run_id is not None else "function"

    def to_json(self) -> dict[str, Any]:
        from flowtide._util.clock import iso

        return {
            "job_id": self.id,
            "queue": self.queue,
            "kind": self.kind,
            "name": self.name,
            "flow": self.flow,
            "run_id": self.run_id,
            "state": self.state,
            "attempt": self.attempt,
            "priority": self.priority,
            "input": self.input,
            "result": self.result,
            "error": self.error,
            "key": self.key,
            "created_at": iso(self.created_at),
            "run_at": iso(self.run_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(slots=True)
class JobUpdate:
    """What becomes of the job that an outcome is about."""

    job_id: str
    state: JobState
    run_at: float | None = None
    error: Any = None
    result: Any = None
    reset_attempts: bool = False


@dataclass(slots=True)
class StateOp:
    scope: str
    key: str
    op: Literal["set", "delete"]
    value: Any = None
    expires_at: float | None = None


@dataclass(slots=True)
class Timer:
    id: str
    due: float
    kind: str
    data: Any = None


@dataclass(slots=True)
class RecordOp:
    """A change to one record of a keyed collection (triggers, fires, awaits...), applied
    atomically with the rest of a transition. ``value`` None deletes the record; ``add`` (not
    0) adds to an integer record instead, like :meth:`Backend.add_to_counter`."""

    collection: str
    key: str
    value: Any = None
    expires_at: float | None = None
    add: int = 0


@dataclass(slots=True)
class Transition:
    """Everything one decision changes, applied atomically by :meth:`Backend.commit`."""

    run: RunRecord | None = None  # the new record; its version must be the stored one + 1
    events: list[NewEvent] = field(default_factory=list)
    enqueue: list[Job] = field(default_factory=list)  # deduplicated by id (and key)
    jobs: list[JobUpdate] = field(default_factory=list)
    cancel_run_jobs: bool = False  # waiting/delayed jobs of the run become canceled
    state: list[StateOp] = field(default_factory=list)
    clear_state: str | None = None  # scope whose state is deleted
    timers: list[Timer] = field(default_factory=list)
    cancel_timers: list[str] = field(default_factory=list)
    records: list[RecordOp] = field(default_factory=list)


Decide = Callable[[RunRecord | None], Transition]

# State values with their expiry: key -> (value, expires_at or None).
StateItems = dict[str, tuple[Any, float | None]]


@dataclass(slots=True)
class RunImport:
    """A run as ``flowtide migrate`` copies it, for :meth:`Backend.import_run`: everything is
    written as it is (events keep their seq, id, ts, type, step, attempt and data; jobs every
    field), nothing is decided. ``state`` is the run's scope; ``jobs`` its step jobs;
    ``timers`` and ``records`` those that belong to it (stall and await deadlines, await
    index entries and tokens)."""

    record: RunRecord
    events: list[Event]
    state: StateItems = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    records: list[RecordOp] = field(default_factory=list)


@dataclass(slots=True)
class CommitItem:
    """One decision to commit. With ``attempt_of=(job_id, attempt)`` the item is skipped
    (nothing written, no events returned) unless that job is still active in that attempt:
    a worker whose lease was lost and whose job another worker reclaimed must not record a
    failure over the newer attempt. ``new_run`` lets an optimistic backend decide without
    reading the record first; if the run exists after all, the version check catches it."""

    run_id: str | None
    decide: Decide
    attempt_of: tuple[str, int] | None = None
    new_run: bool = False  # a hint: the run is not expected to exist (a fresh or derived id)


@dataclass(slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None = None


@runtime_checkable
class Backend(Protocol):
    url: str

    async def open(self) -> None:
        """Connect and create the schema. Raise BackendUnavailable with one clear line."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise BackendUnavailable if the backend does not answer."""

    # -- the hot path --------------------------------------------------------------------
    async def commit(self, items: Sequence[CommitItem]) -> list[list[Event]]:
        """Apply each item's transition atomically; return the events appended for each."""

    async def enqueue(self, jobs: Sequence[Job]) -> list[str]:
        """Insert jobs, deduplicated by id and by key (among unfinished jobs of the queue);
        return the id that stands for each (the existing job's id when deduplicated)."""

    async def claim(
        self,
        worker: str,
        queues: Collection[str] | None,
        limit: int,
        lease: float,
        exclude: Collection[str] = (),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (waiting, delayed and due, or active with an expired
        lease) of unpaused queues, highest priority first, then oldest. ``queues`` None means
        every queue. Claiming increments ``attempt``; reclaiming an expired lease also
        increments ``reclaims``. For each step job, append ``step.started`` (after a
        ``step.retrying`` that says the lease expired, for a reclaimed job). The worker fails
        a job reclaimed more than MAX_RECLAIMS times instead of running it."""

    async def heartbeat(self, worker: str, job_ids: Sequence[str], lease: float) -> list[str]:
        """Extend the leases this worker holds; return the ids it still holds."""

    async def release(self, worker: str, job_ids: Sequence[str]) -> None:
        """Give leased jobs back (graceful shutdown): waiting again, the attempt not counted."""

    async def wait_for_change(self, timeout: float) -> None:
        """Return when something may have changed (a commit or enqueue by any process), or
        after ``timeout`` seconds. A hint for wake-ups; callers re-check their condition."""

    # -- runs and events -----------------------------------------------------------------
    async def append_events(self, run_id: str, events: Sequence[NewEvent]) -> list[Event]:
        """Append events that change no decision (logs) to a run, without a version check."""

    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]: ...

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        """Lifecycle events (flow.* and step.*) of every run, by a global cursor."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Runs newest first; ``items`` are RunRecords."""

    # -- state ---------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]: ...

    async def state_items(self, scope: str) -> dict[str, Any]: ...

    # -- queues and jobs -----------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]: ...

    async def set_paused(self, queue: str, paused: bool) -> None: ...

    async def paused_queues(self) -> set[str]: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page: ...

    async def delete_job(self, job_id: str) -> bool:
        """Delete a job that is not active; False if there is no such job."""

    # -- timers (stall deadlines now; cron occurrences and await deadlines later) ---------
    async def claim_timers(self, now: float, limit: int, lease: float) -> list[Timer]:
        """Return due timers, each to exactly one caller: claiming pushes ``due`` forward by
        ``lease``, so a claimer that crashes before deleting the timer lets another retry."""

    async def delete_timer(self, timer_id: str) -> None: ...

    async def list_timers(self) -> list[Timer]:
        """Every timer, soonest first (inspection and migration)."""

    # -- records: small keyed collections for triggers, fires, schedules and awaits ---------
    # A record is a JSON value under (collection, key); one whose ``expires_at`` has passed is
    # absent for every operation. Keys order records (fire ids are time-ordered UUIDv7).
    async def get_record(self, collection: str, key: str) -> Any:
        """The record's value, or None."""

    async def list_records(
        self, collection: str, limit: int = 100, after: str | None = None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        """Up to ``limit`` (key, value) pairs in key order (descending with ``reverse``),
        starting after key ``after`` in that order."""

    async def put_record(
        self,
        collection: str,
        key: str,
        value: Any,
        *,
        expires_at: float | None = None,
        only_new: bool = False,
    ) -> Any:
        """Store a record. With ``only_new`` an existing record is kept and its value returned
        (atomically: of concurrent callers exactly one stores); otherwise None."""

    async def delete_record(self, collection: str, key: str) -> bool: ...

    async def add_to_counter(
        self, collection: str, key: str, amount: int = 1, expires_at: float | None = None
    ) -> int:
        """Atomically add to an integer record (absent counts as 0); return the new value.
        ``expires_at`` applies when the counter is created."""

    async def record_collections(self) -> list[str]:
        """Names of the collections that hold at least one record (migration)."""

    # -- migration (flowtide migrate): verbatim reads and writes ---------------------------
    async def export_state(self, scope: str) -> StateItems:
        """The live state values of a scope with their expiry times."""

    async def export_records(
        self, collection: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, Any, float | None]]:
        """Like :meth:`list_records` (ascending), with each record's ``expires_at``."""

    async def import_run(self, run: RunImport) -> bool:
        """Write a run as it is, atomically: its record, its events verbatim (the lifecycle
        ones join the feed), its state, jobs (as :meth:`import_jobs` does), timers and records.
        False, and nothing written, if a run with its id exists."""

    async def import_jobs(
        self, jobs: Sequence[Job], state: Mapping[str, StateItems] | None = None
    ) -> list[str]:
        """Insert jobs as they are, with every field (state, attempt, run_at, created_at,
        finished_at, result, error, lease...), in order; a job whose id exists, or whose key
        an unfinished job of its queue holds while it is unfinished itself, is skipped.
        ``state`` (by job id) is the scope ``job:{id}`` of the jobs inserted. Returns the ids
        inserted."""
