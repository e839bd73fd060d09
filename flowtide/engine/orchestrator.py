"""Pure orchestration: (flow graph, run record, what happened) -> Transition. No I/O.

Each function here returns the complete change that one occurrence causes; a backend applies
it atomically. Because these functions are pure, the backend may call them again after an
optimistic-concurrency conflict, and the property tests can explore them exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flowtide.backends.base import Job, JobUpdate, StateOp, Timer, Transition
from flowtide.definitions.awaits import Await
from flowtide.engine import await_plan as aw
from flowtide.events import ACTIVE_STATUSES, NewEvent, RunRecord
from flowtide.registry import FlowGraph

__all__ = [
    "NO_EFFECTS",
    "Conflict",
    "Effects",
    "Gone",
    "Policy",
    "await_due",
    "cancel_run",
    "function_failed",
    "function_succeeded",
    "resolve_await",
    "retry_step",
    "stall_run",
    "start_run",
    "step_failed",
    "step_job_id",
    "step_succeeded",
]


class Conflict(Exception):
    """The occurrence does not apply to the run as it is now (e.g. cancel of a finished run)."""


class Gone(Exception):
    """The await is no longer pending (resolved, timed out, or its run ended)."""


@dataclass(frozen=True, slots=True)
class Policy:
    clear_state_on_end: bool = False
    base_url: str = "http://127.0.0.1:8000"  # webhook await URLs start with it


@dataclass(slots=True)
class Effects:
    """What a step attempt produced besides its return value; committed with its completion."""

    emits: list[tuple[str, Any]]
    state: list[StateOp]
    state_events: list[NewEvent]
    logs: list[NewEvent]
    outbox: list[Timer] = field(default_factory=list)  # emits others listen to (triggers, awaits)


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
    policy: Policy = Policy(),
    stored: RunRecord | None = None,
) -> Transition:
    """Start a run; nothing if a run with this id exists (a fire's runs have derived ids)."""
    if stored is not None:
        return Transition()
    entry = graph.entry
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
        started=[entry.name],
    )
    t = Transition(
        run=record,
        events=[NewEvent("flow.started", {"input": payload, "trigger": trigger})],
        timers=[Timer(stall_timer_id(run_id), stall_at, "stall", {"run_id": run_id})],
    )
    _begin(graph, record, t, entry.name, payload, ts, policy)
    _set_status(record)
    return t


def _begin(
    graph: FlowGraph,
    record: RunRecord,
    t: Transition,
    name: str,
    payload: Any,
    ts: float,
    policy: Policy,
) -> None:
    """A step became startable: wait first if it has ``await_before``, else enqueue its job."""
    decl = graph.steps[name].await_before
    if decl is not None:
        aw.register(t, record, name, "before", decl, ts, policy.base_url, step_input=payload)
        return
    t.enqueue.append(_step_job(graph, record, name, payload, ts))
    record.active.append(name)


def _set_status(record: RunRecord) -> None:
    if record.status in ACTIVE_STATUSES:
        waiting = not record.active and bool(aw.pending(record))
        record.status = "awaiting" if waiting else "running"


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
        awaits={k: dict(v) for k, v in record.awaits.items()},
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
    for entry in aw.pending(record):
        aw.close(t, entry, "canceled")
    if policy.clear_state_on_end:
        t.clear_state = record.run_id


def _settle(graph: FlowGraph, record: RunRecord, t: Transition, ts: float, policy: Policy) -> None:
    """Start what became startable; complete the run once nothing is left to do."""
    if record.status not in ACTIVE_STATUSES:
        return
    for name in _unblocked(graph, record):
        payload = _input_for(graph.steps[name].subscribes, record.tokens)
        record.started.append(name)
        _begin(graph, record, t, name, payload, ts, policy)
    if not record.active and not aw.pending(record):
        record.result = _run_result(graph, record)
        _end(t, record, "completed", ts, policy, {"result": record.result})
    _set_status(record)


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
    t.timers.extend(effects.outbox)
    tokens: dict[str, Any] = {}
    for name, payload in effects.emits:
        t.events.append(NewEvent("emit", {"name": name, "payload": payload}, job.name, job.attempt))
        tokens.setdefault(name, payload)
    data = {"result": result, "duration_ms": round(duration_ms, 3)}
    t.events.append(NewEvent("step.completed", data, job.name, job.attempt))
    tokens[f"step:{job.name}"] = result
    record.done[job.name] = "completed"
    if job.name in record.active:
        record.active.remove(job.name)
    step = graph.steps.get(job.name)
    decl = step.await_after if step is not None else None
    if decl is not None and record.status in ACTIVE_STATUSES:
        # what the step unblocks waits for the await; its tokens are held until then
        aw.register(t, record, job.name, "after", decl, ts, policy.base_url, withheld=tokens)
    else:
        _add_tokens(record, tokens)
    _settle(graph, record, t, ts, policy)
    return t


def _add_tokens(record: RunRecord, tokens: dict[str, Any]) -> None:
    for name, payload in tokens.items():
        if name.startswith("step:"):
            record.tokens[name] = payload
        else:
            record.tokens.setdefault(name, payload)


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
    _set_status(record)
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


# -- awaits --------------------------------------------------------------------------------------


def _open_await(stored: RunRecord | None, aid: str) -> dict[str, Any]:
    if stored is None:
        raise LookupError("no such run")
    entry = stored.awaits.get(aid)
    if entry is None:
        raise LookupError(f"no await {aid}")
    if entry["status"] != "pending" or stored.terminal:
        state = stored.status if stored.terminal else entry["status"]
        raise Gone(f"await {aid} is no longer pending ({state})")
    return entry


def _release(
    graph: FlowGraph, record: RunRecord, t: Transition, entry: dict[str, Any], ts: float
) -> None:
    """The await is over and the run goes on: run the step, or pass on what it held."""
    if entry["position"] == "before":
        t.enqueue.append(_step_job(graph, record, entry["step"], entry.get("input"), ts))
        record.active.append(entry["step"])
    else:
        _add_tokens(record, entry.get("withheld") or {})


def resolve_await(
    graph: FlowGraph,
    stored: RunRecord | None,
    aid: str,
    payload: Any,
    ts: float,
    policy: Policy = Policy(),
    source: str = "api",
) -> Transition:
    """Resolve a pending await with ``payload``; LookupError if unknown, Gone if not pending."""
    _open_await(stored, aid)
    assert stored is not None
    record = _bump(stored, ts)
    entry = record.awaits[aid]
    t = Transition(run=record)
    aw.close(t, entry, "resolved")
    entry["payload"] = payload
    data = {"await_id": aid, "position": entry["position"], "type": entry["type"]}
    data.update(data=payload, by=source)
    t.events.append(NewEvent("await.resolved", data, entry["step"]))
    _release(graph, record, t, entry, ts)
    _settle(graph, record, t, ts, policy)
    return t


def await_due(
    graph: FlowGraph, stored: RunRecord | None, aid: str, ts: float, policy: Policy = Policy()
) -> Transition:
    """The await's timer went off: a time await resolves, anything else times out."""
    tid = aw.timer_id(aid)
    try:
        entry = _open_await(stored, aid)
    except (LookupError, Gone):
        return Transition(cancel_timers=[tid])  # resolved or ended meanwhile: a stale timer
    assert stored is not None
    if entry["due"] > ts + 0.001:  # re-armed meanwhile: back to its deadline
        return Transition(
            timers=[Timer(tid, entry["due"], "await", {"run_id": stored.run_id, "await_id": aid})]
        )
    if entry["action"] == "resolve":
        return resolve_await(graph, stored, aid, _due_payload(entry), ts, policy, "timer")
    assert stored is not None
    step = graph.steps.get(entry["step"])
    decl = _declaration(step, entry["position"])
    record = _bump(stored, ts)
    entry = record.awaits[aid]
    t = Transition(run=record)
    aw.close(t, entry, "timed_out")
    base = {"await_id": aid, "position": entry["position"], "type": entry["type"]}
    on_timeout = decl.on_timeout if decl is not None else "fail"
    if on_timeout == "retry" and decl is not None and entry["retries"] < decl.max_retries:
        t.events.append(NewEvent("await.timed_out", {**base, "action": "retry"}, entry["step"]))
        aw.register(
            t,
            record,
            entry["step"],
            entry["position"],
            decl,
            ts,
            policy.base_url,
            step_input=entry.get("input"),
            withheld=entry.get("withheld"),
            retries=entry["retries"] + 1,
            token=entry.get("token"),
        )
        t.cancel_timers.remove(aw.timer_id(aid))  # re-armed: the same timer, a new deadline
    elif on_timeout == "continue":
        t.events.append(NewEvent("await.timed_out", {**base, "action": "continue"}, entry["step"]))
        entry["payload"] = None
        _release(graph, record, t, entry, ts)
    else:
        t.events.append(NewEvent("await.timed_out", {**base, "action": "fail"}, entry["step"]))
        _fail_awaited_step(graph, record, t, entry, ts, policy)
        return t
    _settle(graph, record, t, ts, policy)
    return t


def _declaration(step: Any, position: str) -> Await | None:
    if step is None:
        return None
    decl: Await | None = step.await_before if position == "before" else step.await_after
    return decl


def _due_payload(entry: dict[str, Any]) -> dict[str, Any]:
    from flowtide._util.clock import iso

    key = "scheduled_at" if entry["type"] == "until" else "resumed_at"
    return {key: iso(entry["due"])}


def _fail_awaited_step(
    graph: FlowGraph,
    record: RunRecord,
    t: Transition,
    entry: dict[str, Any],
    ts: float,
    policy: Policy,
) -> None:
    name = entry["step"]
    message = f"the {entry['type']} await of step {name} timed out"
    error = {"type": "AwaitTimeout", "message": message}
    t.events.append(NewEvent("step.failed", {"error": error}, name))
    record.done[name] = "failed"
    step = graph.steps.get(name)
    if not (step is not None and step.optional):
        record.error = {"step": name, **error}
        _end(t, record, "failed", ts, policy, {"error": record.error})
    else:
        _settle(graph, record, t, ts, policy)
