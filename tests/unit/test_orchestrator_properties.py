"""Property tests of the pure orchestrator over random flow graphs and random schedules.

A random DAG of 1-8 steps (wired by events and ``step:`` tokens, with fan-out and fan-in) is
built with real ``Flow`` objects and ``registry.analyze``. A model of a backend (a dict-based
store plus the set of enqueued jobs) then runs it: at each point it picks at random which job
to claim, which active job to finish, whether to deliver a late duplicate completion, or
whether to cancel the run, and applies the orchestrator's transitions to the store.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtide.backends.base import Job, StateOp, Transition
from flowtide.definitions.flow import Flow
from flowtide.engine import orchestrator as orch
from flowtide.events import NewEvent, RunRecord
from flowtide.registry import FlowGraph, analyze

RUN = "run-1"
TERMINAL_TYPES = {"flow.completed", "flow.failed", "flow.canceled", "flow.stalled"}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def handler(event, ctx):
    return event


@dataclass
class StepSpec:
    name: str
    subscribes: list[str]
    emits: list[str]
    optional: bool
    retries: int
    failures: int  # failing attempts before success; retries + 1 means a final failure
    emitted: list[str]  # what the step actually emits when it succeeds (a branch choice)

    @property
    def fails_finally(self) -> bool:
        return self.failures > self.retries


@st.composite
def flow_specs(draw: st.DrawFn) -> list[StepSpec]:
    n = draw(st.integers(1, 8))
    specs: list[StepSpec] = []
    available: list[str] = []
    for i in range(n):
        emits = [f"e{i}.{k}" for k in range(draw(st.integers(0, 2)))]
        if draw(st.integers(0, 3)) == 0:
            emits.append("common")  # one event that several steps may emit
        subscribes: list[str] = []
        if i > 0:
            subscribes = draw(
                st.lists(st.sampled_from(available), min_size=1, max_size=3, unique=True)
            )
        retries = draw(st.integers(0, 2))
        specs.append(
            StepSpec(
                name=f"s{i}",
                subscribes=subscribes,
                emits=emits,
                optional=draw(st.integers(0, 2)) == 0,
                retries=retries,
                failures=draw(st.integers(0, retries + 1)) if draw(st.booleans()) else 0,
                emitted=[e for e in emits if draw(st.integers(0, 3)) > 0],
            )
        )
        available += [f"step:s{i}"] + [e for e in emits if e not in available]
    return specs


def build_graph(specs: list[StepSpec]) -> FlowGraph:
    flow = Flow("random")
    for spec in specs:
        options = {"emits": spec.emits, "retries": spec.retries, "optional": spec.optional}
        if not spec.subscribes:
            flow.entry(spec.name, **options)(handler)
        else:
            flow.step(spec.name, subscribes=spec.subscribes, **options)(handler)
    return analyze(flow)


def expected_steps(specs: list[StepSpec]) -> set[str]:
    """The steps that run when nothing fails the run: a fixpoint over satisfied tokens."""
    ran: set[str] = set()
    tokens: set[str] = set()
    changed = True
    while changed:
        changed = False
        for spec in specs:
            if spec.name in ran or not all(t in tokens for t in spec.subscribes):
                continue
            ran.add(spec.name)
            changed = True
            if not spec.fails_finally:
                tokens.add(f"step:{spec.name}")
                tokens.update(spec.emitted)
    return ran


def emit_payload(step: str, event: str) -> dict[str, str]:
    return {"by": step, "event": event}


def result_of(step: str) -> dict[str, str]:
    return {"result": step}


@dataclass
class Store:
    """What a backend holds for one run, as plain dicts."""

    record: RunRecord | None = None
    events: list[NewEvent] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    timers: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> Store:
        return copy.deepcopy(self)


class Model:
    def __init__(self, graph: FlowGraph, specs: list[StepSpec], policy: orch.Policy) -> None:
        self.graph = graph
        self.specs = {s.name: s for s in specs}
        self.policy = policy
        self.store = Store()
        self.clock = 1000.0
        self.late: list[tuple[str, Job, Any]] = []  # duplicate deliveries still to come
        self.canceled = False
        self.decisions = 0

    # -- the store ------------------------------------------------------------------------------
    def satisfied(self) -> dict[str, Any]:
        """Tokens satisfied by the events committed so far (first emit of a name wins)."""
        tokens: dict[str, Any] = {}
        for ev in self.store.events:
            if ev.type == "emit":
                tokens.setdefault(ev.data["name"], ev.data["payload"])
            elif ev.type == "step.completed":
                tokens[f"step:{ev.step}"] = ev.data["result"]
        return tokens

    def decide(self, fn) -> Transition:
        """Call a decision like a backend would, checking that it is pure on the way."""
        stored = self.store.record
        before = copy.deepcopy(stored)
        first = fn(copy.deepcopy(stored))
        second = fn(copy.deepcopy(stored))
        assert first == second, "the same stored record must give the same transition"
        fn(stored)
        assert stored == before, "decide must not mutate the record it is given"
        self.decisions += 1
        return first

    def apply(self, t: Transition) -> None:
        s = self.store
        was_terminal = s.record is not None and s.record.terminal
        if t.run is not None:
            expected = 1 if s.record is None else s.record.version + 1
            assert t.run.version == expected
            s.record = copy.deepcopy(t.run)
        s.events.extend(copy.deepcopy(t.events))
        for update in t.jobs:
            job = s.jobs[update.job_id]
            job["error"], job["result"] = update.error, update.result
            job["state"] = update.state
            if update.reset_attempts:
                job["attempt"] = 0
        if t.cancel_run_jobs:
            for job in s.jobs.values():
                if job["state"] in ("waiting", "delayed"):
                    job["state"] = "canceled"
        if t.enqueue:
            assert not was_terminal, "no step may start once the run ended"
            tokens = self.satisfied()
        for new in t.enqueue:
            assert new.id == orch.step_job_id(RUN, new.name)
            assert new.id not in s.jobs, f"step {new.name} started twice"
            subscribes = self.graph.steps[new.name].subscribes
            missing = [tok for tok in subscribes if tok not in tokens]
            assert not missing, f"{new.name} started before {missing} were satisfied"
            if len(subscribes) == 1:
                assert new.input == tokens[subscribes[0]]
            elif subscribes:
                assert new.input == {tok: tokens[tok] for tok in subscribes}
            s.jobs[new.id] = {"job": new, "state": "waiting", "attempt": 0}
            s.jobs[new.id].update(result=None, error=None)
        for op in t.state:
            if op.op == "delete":
                s.state.pop(op.key, None)
            else:
                s.state[op.key] = op.value
        if t.clear_state is not None:
            s.state.clear()
        for timer in t.timers:
            s.timers[timer.id] = timer
        for timer_id in t.cancel_timers:
            s.timers.pop(timer_id, None)

    # -- occurrences ------------------------------------------------------------------------------
    def tick(self) -> float:
        self.clock += 1.0
        return self.clock

    def start(self) -> None:
        ts = self.tick()
        self.apply(self.decide(lambda _: orch.start_run(self.graph, RUN, {"in": 1}, None, ts)))

    def claim(self, job_id: str) -> None:
        job = self.store.jobs[job_id]
        job["attempt"] += 1
        job["state"] = "active"

    def finish(self, job_id: str, draw) -> None:
        entry = self.store.jobs[job_id]
        job = dataclasses.replace(entry["job"], attempt=entry["attempt"], state="active")
        spec = self.specs[job.name]
        ts = self.tick()
        if job.attempt <= spec.failures:
            error = {"type": "Boom", "message": f"attempt {job.attempt}"}
            retry_at = ts + 5 if job.attempt <= spec.retries else None
            t = self.decide(
                lambda r: orch.step_failed(self.graph, r, job, error, retry_at, ts, self.policy)
            )
            self.apply(t)
            if retry_at is None and draw(st.booleans()):
                self.late.append(("same-failure", job, error))
            return
        effects = orch.Effects(
            emits=[(name, emit_payload(job.name, name)) for name in spec.emitted],
            state=[StateOp(RUN, f"k.{job.name}", "set", job.attempt)],
            state_events=[NewEvent("state", {"op": "set", "key": f"k.{job.name}"}, job.name)],
            logs=[NewEvent("log", {"message": "hi"}, job.name, job.attempt)],
        )
        result = result_of(job.name)
        t = self.decide(
            lambda r: orch.step_succeeded(self.graph, r, job, result, effects, 1.0, ts, self.policy)
        )
        self.apply(t)
        kind = draw(st.sampled_from([None, None, "same-success", "other-success", "late-failure"]))
        if kind is not None:
            self.late.append((kind, job, effects))

    def duplicate(self, index: int) -> None:
        kind, job, extra = self.late.pop(index)
        ts = self.tick()
        before = self.store.snapshot()
        g, p = self.graph, self.policy
        if kind == "same-success":
            fn = lambda r: orch.step_succeeded(g, r, job, result_of(job.name), extra, 1, ts, p)  # noqa: E731
        elif kind == "other-success":  # the handler ran twice and returned something else
            fn = lambda r: orch.step_succeeded(g, r, job, {"other": 1}, orch.NO_EFFECTS, 1, ts, p)  # noqa: E731
        elif kind == "late-failure":  # a second run of an already completed step failed
            err = {"type": "Late", "message": "x"}
            fn = lambda r: orch.step_failed(g, r, job, err, ts + 5, ts, p)  # noqa: E731
        else:
            fn = lambda r: orch.step_failed(g, r, job, extra, None, ts, p)  # noqa: E731
        self.apply(self.decide(fn))
        assert self.store == before, f"a duplicate completion ({kind}) changed the store"

    def cancel(self) -> None:
        ts = self.tick()
        self.apply(self.decide(lambda r: orch.cancel_run(r, "test", ts, self.policy)))
        self.canceled = True

    # -- the loop --------------------------------------------------------------------------------
    def run(self, draw, allow_cancel: bool) -> None:
        self.start()
        for _ in range(500):
            actions: list[tuple[Any, ...]] = []
            for job_id, job in sorted(self.store.jobs.items()):
                if job["state"] in ("waiting", "delayed"):
                    actions.append(("claim", job_id))
                elif job["state"] == "active":
                    actions.append(("finish", job_id))
            actions += [("duplicate", i) for i in range(len(self.late))]
            if allow_cancel and not self.canceled and not self.store.record.terminal:
                actions.append(("cancel",))
            if not actions:
                return
            action = draw(st.sampled_from(actions))
            if action[0] == "claim":
                self.claim(action[1])
            elif action[0] == "finish":
                self.finish(action[1], draw)
            elif action[0] == "duplicate":
                self.duplicate(action[1])
            else:
                self.cancel()
        raise AssertionError("the simulation did not finish")


def started_steps(store: Store) -> set[str]:
    return {job["job"].name for job in store.jobs.values()}


def count(store: Store, type_: str, step: str | None = None) -> int:
    return sum(1 for e in store.events if e.type == type_ and (step is None or e.step == step))


def specs_by(specs: list[StepSpec]) -> dict[str, StepSpec]:
    return {s.name: s for s in specs}


def opt(specs: list[StepSpec], name: str) -> bool:
    return specs_by(specs)[name].optional


def fails(specs: list[StepSpec], name: str) -> bool:
    return specs_by(specs)[name].fails_finally


@SETTINGS
@given(specs=flow_specs(), data=st.data(), clear_state=st.booleans(), cancel=st.booleans())
def test_random_flows_under_random_schedules(specs, data, clear_state, cancel):
    graph = build_graph(specs)
    model = Model(graph, specs, orch.Policy(clear_state_on_end=clear_state))
    model.run(data.draw, allow_cancel=cancel and data.draw(st.booleans()))
    store, record = model.store, model.store.record

    # exactly one terminal event, and the record agrees with it
    terminal = [e for e in store.events if e.type in TERMINAL_TYPES]
    assert len(terminal) == 1
    assert record.terminal and terminal[0].type == f"flow.{record.status}"
    assert count(store, "flow.started") == 1 and store.events[0].type == "flow.started"
    # the run is over: nothing waits, and its stall timer is gone
    assert not [j for j in store.jobs.values() if j["state"] in ("waiting", "delayed", "active")]
    assert orch.stall_timer_id(RUN) not in store.timers
    # every step is committed at most once
    for name in graph.steps:
        assert count(store, "step.completed", name) + count(store, "step.failed", name) <= 1

    reachable = expected_steps(specs)
    fatal = {n for n in reachable if specs_by(specs)[n].fails_finally and not opt(specs, n)}
    assert started_steps(store) <= reachable
    if model.canceled:
        assert record.status == "canceled"
    elif fatal:
        assert record.status == "failed"
        failed_step = record.error["step"]
        assert failed_step in fatal
        first_fatal = next(
            e.step for e in store.events if e.type == "step.failed" and e.step in fatal
        )
        assert failed_step == first_fatal
        assert terminal[0].data["error"] == record.error
    else:
        assert record.status == "completed"
        # every reachable step ran exactly once, and everything it was due to do got done
        assert started_steps(store) == reachable
        for job in store.jobs.values():
            name = job["job"].name
            expected = "failed" if specs_by(specs)[name].fails_finally else "completed"
            assert job["state"] == expected
        completed_sinks = [s for s in graph.sinks if s in reachable and not fails(specs, s)]
        if len(graph.sinks) == 1:
            expected_result = result_of(graph.sinks[0]) if completed_sinks else None
        else:
            expected_result = {s: result_of(s) for s in completed_sinks}
        assert record.result == expected_result
        assert terminal[0].data == {"result": expected_result}
    if clear_state and record.status == "completed":
        assert store.state == {}


# -- purity ----------------------------------------------------------------------------------------


def sample_graph() -> FlowGraph:
    flow = Flow("pure")
    flow.entry("a", emits=["x", "y"])(handler)
    flow.step("b", subscribes=["x"], retries=2)(handler)
    flow.step("c", subscribes=["x", "y"], optional=True)(handler)
    flow.step("d", subscribes=["step:b", "step:c"])(handler)
    return analyze(flow)


def test_decisions_are_pure_functions_of_the_stored_record():
    graph = sample_graph()
    start = orch.start_run(graph, RUN, {"in": 1}, {"name": "t", "type": "manual"}, 10.0)
    stored = copy.deepcopy(start.run)
    entry = dataclasses.replace(start.enqueue[0], attempt=1, state="active")
    effects = orch.Effects([("x", 1), ("y", 2)], [StateOp(RUN, "k", "set", 1)], [], [])
    decisions = {
        "succeeded": lambda r: orch.step_succeeded(graph, r, entry, "ok", effects, 3.0, 11.0),
        "retrying": lambda r: orch.step_failed(graph, r, entry, {"type": "E"}, 20.0, 11.0),
        "failed": lambda r: orch.step_failed(graph, r, entry, {"type": "E"}, None, 11.0),
        "canceled": lambda r: orch.cancel_run(r, "why", 11.0, orch.Policy()),
        "stalled": lambda r: orch.stall_run(r, r.version, "slow", 11.0, orch.Policy()),
        "retry": lambda r: orch.retry_step(r, entry, 11.0),
    }
    for name, decide in decisions.items():
        snapshot = copy.deepcopy(stored)
        first = decide(stored)
        assert stored == snapshot, f"{name} mutated the stored record"
        second = decide(stored)
        assert first == second, name
        assert first.run is not None and first.run.version == stored.version + 1, name
        assert first.run is not stored, name
    ok = decisions["succeeded"](stored)
    assert [j.name for j in ok.enqueue] == ["b", "c"]
    assert ok.enqueue[1].input == {"x": 1, "y": 2}
    assert ok.state == effects.state and ok.state is not effects.state


def test_stall_only_applies_to_the_version_it_saw():
    graph = sample_graph()
    record = orch.start_run(graph, RUN, None, None, 10.0).run
    assert orch.stall_run(record, record.version - 1, "x", 11.0, orch.Policy()) == Transition()
    stalled = orch.stall_run(record, record.version, "x", 11.0, orch.Policy())
    assert stalled.run.status == "stalled"
    assert [e.type for e in stalled.events] == ["step.stalled", "flow.stalled"]
    assert orch.stall_run(stalled.run, stalled.run.version, "x", 12.0, orch.Policy()) == (
        Transition()
    )
    assert orch.stall_run(None, 1, "x", 12.0, orch.Policy()) == Transition()


def test_cancel_of_an_ended_or_unknown_run():
    graph = sample_graph()
    record = orch.start_run(graph, RUN, None, None, 10.0).run
    canceled = orch.cancel_run(record, "stop", 11.0, orch.Policy()).run
    with pytest.raises(orch.Conflict):
        orch.cancel_run(canceled, "again", 12.0, orch.Policy())
    with pytest.raises(LookupError):
        orch.cancel_run(None, "x", 12.0, orch.Policy())


def test_a_completion_for_a_vanished_run_still_finishes_the_job():
    graph = sample_graph()
    job = Job(id=f"{RUN}:a", queue="pure", name="a", run_id=RUN, flow="pure", attempt=1)
    ok = orch.step_succeeded(graph, None, job, 1, orch.NO_EFFECTS, 1.0, 11.0)
    assert [(u.job_id, u.state) for u in ok.jobs] == [(job.id, "completed")]
    assert ok.run is None and ok.events == [] and ok.enqueue == []
    failed = orch.step_failed(graph, None, job, {"type": "E"}, None, 11.0)
    assert [(u.job_id, u.state) for u in failed.jobs] == [(job.id, "failed")]
