"""Pure orchestration: (flow graph, run record, what happened) -> Transition. No I/O.

Each function here returns the complete change that one occurrence causes; a backend applies
it atomically. Because these functions are pure, the backend may call them again after an
optimistic-concurrency conflict, and the property tests can explore them exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flowtide.backends.base import Job, JobUpdate, StateOp, Timer, Transition
from flowtide.events import ACTIVE_STATUSES, NewEvent, RunRecord
from flowtide.registry import FlowGraph

__all__ = [
    "NO_EFFECTS",
    "Conflict",
    "Effects",
    "Policy",
    "cancel_run",
    "function_failed",
    "function_succeeded",
    "retry_step",
    "stall_run",
    "start_run",
    "step_failed",
    "step_job_id",
    "step_succeeded",
]


class Conflict(Exception):
    """The occurrence does not apply to the run as it is now (e.g. cancel of a finished run)."""


@dataclass(frozen=True, slots=True)
class Policy:
    clear_state_on_end: bool = False


@dataclass(slots=True)
class Effects:
    """What a step attempt produced besides its return value; committed with its completion."""

    emits: list[tuple[str, Any]]
    state: list[StateOp]
    state_events: list[NewEvent]
    logs: list[NewEvent]


NO_EFFECTS = Effects([], [], [], [])


def step_job_id(run_id: str, step: str) -> str:
    return f"{run_id}:{step}"


def stall_timer_id(run_id: str) -> str:
    return f"stall:{run_id}"


def _step_job(graph: FlowGraph, record: RunRecord, step: str, payload: Any, ts: float) -> Job:
    opts = graph.steps[step].options
    return Job(
        id=step_job_id(record.run_id, step),
        queue=opts.queue,
        name=step,
        input=payload,
        run_id=record.run_id,
        flow=record.flow,
        priority=opts.priority,
        run_at=ts,
        created_at=ts,
    )


def start_run(
    graph: FlowGraph,
    run_id: str,
    payload: Any,
    trigger: dict[str, Any] | None,
    ts: float,
    stall_after: float | None = None,
) -> Transition:
    entry = graph.entry.name
    stall_at = ts + (graph.stall_timeout if stall_after is None else stall_after)
    record = RunRecord(
        run_id=run_id,
        flow=graph.name,
        status="running",
        input=payload,
        trigger=trigger,
        started_at=ts,
        updated_at=ts,
        version=1,
        started=[entry],
        active=[entry],
    )
    return Transition(
        run=record,
        events=[NewEvent("flow.started", {"input": payload, "trigger": trigger})],
        enqueue=[_step_job(graph, record, entry, payload, ts)],
        timers=[Timer(stall_timer_id(run_id), stall_at, "stall", {"run_id": run_id})],
    )


def _bump(record: RunRecord, ts: float) -> RunRecord:
    """A new version of the record that shares no mutable part with the stored one."""
    return replace(
        record,
        version=record.version + 1,
        updated_at=ts,
        tokens=dict(record.tokens),
        started=list(record.started),
        active=list(record.active),
        done=dict(record.done),
    )


def _input_for(step_tokens: tuple[str, ...], tokens: dict[str, Any]) -> Any:
    if len(step_tokens) == 1:
        return tokens[step_tokens[0]]
    return {token: tokens[token] for token in step_tokens}


def _unblocked(graph: FlowGraph, record: RunRecord) -> list[str]:
    started = set(record.started)
    return [
        name
        for name, step in graph.steps.items()
        if name not in started and all(token in record.tokens for token in step.subscribes)
    ]


def _run_result(graph: FlowGraph, record: RunRecord) -> Any:
    done = [s for s in graph.sinks if record.done.get(s) == "completed"]
    if len(graph.sinks) == 1:
        return record.tokens.get(f"step:{graph.sinks[0]}")
    return {s: record.tokens.get(f"step:{s}") for s in done}


def _end(
    t: Transition, record: RunRecord, status: str, ts: float, policy: Policy, data: dict[str, Any]
) -> None:
    record.status = status
    record.completed_at = ts
    t.events.append(NewEvent(f"flow.{status}", data))
    t.cancel_timers.append(stall_timer_id(record.run_id))
    t.cancel_run_jobs = True
    if policy.clear_state_on_end:
        t.clear_state = record.run_id


def _settle(graph: FlowGraph, record: RunRecord, t: Transition, ts: float, policy: Policy) -> None:
    """Start what became startable; complete the run once nothing is left to do."""
    if record.status not in ACTIVE_STATUSES:
        return
    for name in _unblocked(graph, record):
        payload = _input_for(graph.steps[name].subscribes, record.tokens)
        t.enqueue.append(_step_job(graph, record, name, payload, ts))
        record.started.append(name)
        record.active.append(name)
    if not record.active:
        record.result = _run_result(graph, record)
        _end(t, record, "completed", ts, policy, {"result": record.result})


def step_succeeded(
    graph: FlowGraph,
    stored: RunRecord | None,
    job: Job,
    result: Any,
    effects: Effects,
    duration_ms: float,
    ts: float,
    policy: Policy = Policy(),
) -> Transition:
    done = JobUpdate(job.id, "completed", result=result)
    if stored is None:
        return Transition(jobs=[done])  # the run is gone: just finish the job
    if stored.done.get(job.name) is not None:
        return Transition()  # already committed (the handler ran twice): change nothing
    record = _bump(stored, ts)
    t = Transition(run=record, jobs=[done], state=list(effects.state))
    t.events.extend(effects.logs)
    t.events.extend(effects.state_events)
    for name, payload in effects.emits:
        t.events.append(NewEvent("emit", {"name": name, "payload": payload}, job.name, job.attempt))
        record.tokens.setdefault(name, payload)
    data = {"result": result, "duration_ms": round(duration_ms, 3)}
    t.events.append(NewEvent("step.completed", data, job.name, job.attempt))
    record.tokens[f"step:{job.name}"] = result
    record.done[job.name] = "completed"
    if job.name in record.active:
        record.active.remove(job.name)
    _settle(graph, record, t, ts, policy)
    return t


def step_failed(
    graph: FlowGraph,
    stored: RunRecord | None,
    job: Job,
    error: dict[str, Any],
    retry_at: float | None,
    ts: float,
    policy: Policy = Policy(),
    logs: list[NewEvent] | None = None,
) -> Transition:
    """A failed attempt: retried at ``retry_at``, or (None) the step's final failure."""
    if stored is None:
        return Transition(jobs=[JobUpdate(job.id, "failed", error=error)])
    if stored.done.get(job.name) is not None:
        return Transition()  # the step's outcome is already committed: change nothing
    record = _bump(stored, ts)
    if retry_at is not None and record.status in ACTIVE_STATUSES:
        data = {
            "error": error,
            "next_attempt": job.attempt + 1,
            "delay_ms": round(max(retry_at - ts, 0) * 1000),
        }
        return Transition(
            run=record,
            events=[*(logs or []), NewEvent("step.retrying", data, job.name, job.attempt)],
            jobs=[JobUpdate(job.id, "delayed", run_at=retry_at, error=error)],
        )
    t = Transition(
        run=record, jobs=[JobUpdate(job.id, "failed", error=error)], events=list(logs or [])
    )
    t.events.append(NewEvent("step.failed", {"error": error}, job.name, job.attempt))
    record.done[job.name] = "failed"
    if job.name in record.active:
        record.active.remove(job.name)
    step = graph.steps.get(job.name)
    if record.status in ACTIVE_STATUSES and not (step is not None and step.optional):
        record.error = {"step": job.name, **error}
        _end(t, record, "failed", ts, policy, {"error": record.error})
    else:
        _settle(graph, record, t, ts, policy)
    return t


def retry_step(stored: RunRecord, job: Job, ts: float) -> Transition:
    """Run a finally-failed step of a still-active run again (an optional step, say)."""
    record = _bump(stored, ts)
    record.done.pop(job.name, None)
    if job.name not in record.active:
        record.active.append(job.name)
    return Transition(run=record, jobs=[JobUpdate(job.id, "waiting", reset_attempts=True)])


def cancel_run(stored: RunRecord | None, reason: str, ts: float, policy: Policy) -> Transition:
    if stored is None:
        raise LookupError("no such run")
    if stored.terminal:
        raise Conflict(f"run {stored.run_id} is already {stored.status}")
    record = _bump(stored, ts)
    t = Transition(run=record)
    _end(t, record, "canceled", ts, policy, {"reason": reason, "previous_status": stored.status})
    return t


def stall_run(
    stored: RunRecord | None, seen_version: int, reason: str, ts: float, policy: Policy
) -> Transition:
    """Mark a run stalled, unless it changed since the stall check looked at it."""
    if stored is None or stored.terminal or stored.version != seen_version:
        return Transition()
    record = _bump(stored, ts)
    t = Transition(run=record)
    for name in record.active:
        t.events.append(NewEvent("step.stalled", {"reason": reason}, name))
    record.error = {"type": "Stalled", "message": reason}
    _end(t, record, "stalled", ts, policy, {"reason": reason})
    return t


def function_succeeded(job: Job, result: Any, effects: Effects) -> Transition:
    return Transition(jobs=[JobUpdate(job.id, "completed", result=result)], state=effects.state)


def function_failed(job: Job, error: dict[str, Any], retry_at: float | None) -> Transition:
    if retry_at is not None:
        return Transition(jobs=[JobUpdate(job.id, "delayed", run_at=retry_at, error=error)])
    return Transition(jobs=[JobUpdate(job.id, "failed", error=error)])
