"""Converting between flowtide's objects and what the Redis scripts store and return.

Numbers are sent as Python ``repr`` strings and stored as sent, so floats round-trip exactly;
``''`` stands for None in string fields; JSON fields always hold JSON (``null`` for None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowtide._util.clock import iso
from flowtide._util.jsonutil import dumps, loads
from flowtide.backends.base import (
    Job,
    JobUpdate,
    RecordOp,
    StateItems,
    StateOp,
    Timer,
    Transition,
)
from flowtide.events import LIFECYCLE_TYPES, Event, NewEvent, RunRecord

__all__ = [
    "decode_job",
    "decode_record",
    "encode_record",
    "event_suffix",
    "import_event",
    "import_job_args",
    "job_args",
    "record_args",
    "transition_ops",
]

Arg = str | bytes | int | float


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _opt_float(text: str | None) -> float | None:
    return float(text) if text else None


def job_args(job: Job, ts: float) -> list[Arg]:
    """The ten fields ``insert_job`` takes."""
    return [
        job.id,
        job.queue,
        job.name,
        job.run_id or "",
        job.flow or "",
        str(int(job.priority)),
        _num(job.run_at or ts),
        _num(job.created_at or ts),
        job.key or "",
        dumps(job.input),
    ]


def decode_job(h: dict[str, str]) -> Job:
    """A job from its hash (``HGETALL``, with ``id`` added when the hash lacks it)."""
    return Job(
        id=h["id"],
        queue=h["queue"],
        name=h["name"],
        input=loads(h["input"]),
        run_id=h["run_id"] or None,
        flow=h["flow"] or None,
        state=h["state"],  # type: ignore[arg-type]
        attempt=int(h["attempt"]),
        priority=int(h["priority"]),
        run_at=float(h["run_at"]),
        created_at=float(h["created_at"]),
        key=h["key"] or None,
        error=loads(h["error"]) if h.get("error") else None,
        result=loads(h["result"]) if h.get("result") else None,
        reclaims=int(h["reclaims"]),
        lease_until=_opt_float(h.get("lease_until")),
        worker=h.get("worker") or None,
        finished_at=_opt_float(h.get("finished_at")),
    )


def decode_claimed(row: Sequence[Any], worker: str, lease_until: float) -> Job:
    job_id, queue, name, run_id, flow, attempt, prio, run_at, created, key, inp, recl = row[:12]
    return Job(
        id=job_id,
        queue=queue,
        name=name,
        input=loads(inp),
        run_id=run_id or None,
        flow=flow or None,
        state="active",
        attempt=int(attempt),
        priority=int(prio),
        run_at=float(run_at),
        created_at=float(created),
        key=key or None,
        reclaims=int(recl),
        worker=worker,
        lease_until=lease_until,
    )


def encode_record(r: RunRecord) -> bytes:
    parts = [r.run_id, r.flow, r.status, r.version, r.started_at, r.updated_at, r.completed_at]
    return dumps([*parts, r.body()])


def decode_record(text: str | bytes) -> RunRecord:
    return RunRecord.from_parts(*loads(text))


def event_suffix(run_id: str, new: NewEvent, ts_iso: str | None) -> bytes:
    """The event's JSON without ``{`` and without seq, id and flow (the script adds them)."""
    body = {
        "ts": ts_iso,
        "type": new.type,
        "run_id": run_id,
        "step": new.step,
        "attempt": new.attempt,
        "data": new.data,
    }
    return dumps(body)[1:]


def lifecycle_flag(new: NewEvent) -> str:
    return "1" if new.type in LIFECYCLE_TYPES else "0"


def build(run_id: str, flow: str, seq: int, new: NewEvent, ts_iso: str | None) -> Event:
    return {
        "seq": seq,
        "id": f"{run_id}:{seq}",
        "ts": ts_iso,
        "type": new.type,
        "run_id": run_id,
        "flow": flow,
        "step": new.step,
        "attempt": new.attempt,
        "data": new.data,
    }


def _job_update(u: JobUpdate) -> list[Arg]:
    return [
        "J",
        u.job_id,
        u.state,
        _num(u.run_at),
        dumps(u.error),
        dumps(u.result),
        "1" if u.reset_attempts else "0",
    ]


def _state_op(op: StateOp) -> list[Arg]:
    if op.op == "delete":
        return ["D", op.scope, op.key]
    return ["S", op.scope, op.key, dumps(op.value), _num(op.expires_at)]


def record_args(key: str, value: Any, expires_at: float | None) -> list[Arg]:
    """A record as the scripts take it: key, value as JSON ('' for None, which deletes the
    record), expiry time ('' for never)."""
    return [key, "" if value is None else dumps(value), _num(expires_at)]


def _record_op(op: RecordOp) -> list[Arg]:
    if op.add:
        return ["A", op.collection, op.key, str(int(op.add)), _num(op.expires_at)]
    return ["K", op.collection, *record_args(op.key, op.value, op.expires_at)]


def _timer(timer: Timer) -> list[Arg]:
    return ["T", timer.id, _num(timer.due), dumps([timer.kind, timer.data])]


def transition_ops(
    run_id: str | None,
    t: Transition,
    ts: float,
    ts_iso: str | None,
    out: list[Arg],
    records: dict[str, tuple[int, bytes]] | None = None,
) -> int:
    """Append the operations of one transition to ``out``; return how many events it has
    (each an ``E`` operation whose seq the script returns). ``records`` gets the run record
    written, encoded, by run id."""
    if t.run is not None:
        r = t.run
        run_id = r.run_id
        encoded = encode_record(r)
        out += ["R", r.run_id, str(r.version), r.status, r.flow, dumps(r.flow)]
        out += [_num(r.completed_at), encoded]
        if records is not None:
            records[r.run_id] = (r.version, encoded)
    events = 0
    if run_id is not None:
        for new in t.events:
            out += ["E", run_id, lifecycle_flag(new), event_suffix(run_id, new, ts_iso)]
            events += 1
    for update in t.jobs:
        out += _job_update(update)
    if t.cancel_run_jobs and run_id is not None:
        out += ["C", run_id]
    for job in t.enqueue:
        out += ["Q", *job_args(job, ts)]
    for op in t.state:
        out += _state_op(op)
    if t.clear_state is not None:
        out += ["Z", t.clear_state]
    for timer in t.timers:
        out += _timer(timer)
    for timer_id in t.cancel_timers:
        out += ["U", timer_id]
    for rec in t.records:
        out += _record_op(rec)
    return events


def iso_ts(ts: float) -> str | None:
    return iso(ts)


# -- migration (import_run, import_jobs) ------------------------------------------------------
def import_job_args(job: Job, state: StateItems | None = None) -> list[Arg]:
    """A job's arguments to ``import_job`` (lua/_import.lua): every field, then its state."""
    out: list[Arg] = [
        *(job.id, job.queue, job.name, job.run_id or "", job.flow or "", job.state),
        *(str(int(job.attempt)), str(int(job.reclaims)), str(int(job.priority))),
        *(_num(job.run_at), _num(job.created_at), _num(job.finished_at), job.key or ""),
        *(job.worker or "", _num(job.lease_until)),
        *(dumps(job.input), dumps(job.result), dumps(job.error)),
        str(len(state or {})),
    ]
    for key, (value, expires_at) in (state or {}).items():
        out += [key, dumps(value), _num(expires_at)]
    return out


def import_event(event: Event) -> bytes:
    """An event as the run's list stores it (the field order of ``append_event``)."""
    order = ("seq", "id", "flow", "ts", "type", "run_id", "step", "attempt", "data")
    return dumps({name: event.get(name) for name in order})
