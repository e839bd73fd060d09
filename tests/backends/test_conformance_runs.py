"""Conformance: commit atomicity, run records, events, the lifecycle feed, runs and state."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import BackendUnavailable, create_backend
from flowtide.backends.base import CommitItem, JobUpdate, StateOp, Timer, Transition
from flowtide.events import NewEvent, RunRecord

LEASE = 30.0


class Boom(Exception):
    pass


def bump(record: RunRecord, **changes) -> RunRecord:
    return dataclasses.replace(record, version=record.version + 1, updated_at=now(), **changes)


def advance(*events: NewEvent, **changes):
    """A decide that bumps the stored record and appends ``events``."""

    def decide(stored: RunRecord | None) -> Transition:
        assert stored is not None
        return Transition(run=bump(stored, **changes), events=list(events))

    return decide


def raising(_: RunRecord | None) -> Transition:
    raise Boom("decide failed")


def full_transition(run_id: str, make_step_job) -> Transition:
    ts = now()
    record = RunRecord(run_id, "f", "running", {"x": 1}, ts, ts, version=1)
    return Transition(
        run=record,
        events=[NewEvent("flow.started", {"input": {"x": 1}})],
        enqueue=[make_step_job(run_id, "a")],
        state=[StateOp(run_id, "k", "set", 1)],
        timers=[Timer(f"t:{run_id}", ts - 1, "stall", {"run_id": run_id})],
    )


# -- commit atomicity ------------------------------------------------------------------------------


async def test_a_decide_that_raises_leaves_nothing_visible(backend, make_step_job):
    run_id = uuid7()
    full = full_transition(run_id, make_step_job)

    def decide(stored):
        full_transition(run_id, make_step_job)  # does the work, then fails
        raise Boom("late failure")

    with pytest.raises(Boom):
        await backend.commit([CommitItem(run_id, decide)])
    await assert_nothing_of(backend, run_id)
    # and the same transition does commit when decide succeeds
    await backend.commit([CommitItem(run_id, lambda _: full)])
    assert (await backend.get_run(run_id)) is not None
    assert [e["type"] for e in await backend.read_events(run_id)] == ["flow.started"]
    assert (await backend.get_job(f"{run_id}:a")) is not None
    assert await backend.get_state(run_id, "k") == (True, 1)
    assert [t.id for t in await backend.claim_timers(now(), 100, LEASE)] == [f"t:{run_id}"]
    assert len(await backend.read_feed(0)) == 1


async def assert_nothing_of(backend, run_id: str) -> None:
    assert await backend.get_run(run_id) is None
    assert await backend.read_events(run_id) == []
    assert await backend.get_job(f"{run_id}:a") is None
    assert await backend.get_state(run_id, "k") == (False, None)
    assert await backend.claim_timers(now() + 3600, 100, LEASE) == []
    assert (await backend.list_runs()).items == []
    assert await backend.read_feed(0) == []


async def test_a_batch_is_atomic_when_a_later_item_raises(backend, make_step_job):
    first, second = uuid7(), uuid7()
    items = [
        CommitItem(first, lambda _: full_transition(first, make_step_job)),
        CommitItem(second, raising),
    ]
    with pytest.raises(Boom):
        await backend.commit(items)
    await assert_nothing_of(backend, first)
    await assert_nothing_of(backend, second)


async def test_a_batch_that_raises_leaves_existing_runs_unchanged(backend, new_run):
    run_id = await new_run()
    before = await backend.get_run(run_id)
    items = [
        CommitItem(run_id, advance(NewEvent("log", {"m": 1}), status="awaiting")),
        CommitItem(run_id, raising),
    ]
    with pytest.raises(Boom):
        await backend.commit(items)
    assert await backend.get_run(run_id) == before
    assert [e["seq"] for e in await backend.read_events(run_id)] == [1]


# -- run records -----------------------------------------------------------------------------------


async def test_concurrent_commits_fail_alone(backend, new_run):
    """Commits made at once (which a backend may send together) stay separate: one whose
    decide raises fails its own call only, and every other call is applied."""
    runs = [await new_run() for _ in range(6)]
    calls = [
        backend.commit([CommitItem(run_id, raising if i == 2 else advance(status="waiting"))])
        for i, run_id in enumerate(runs)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [isinstance(r, Boom) for r in results] == [i == 2 for i in range(6)]
    for i, run_id in enumerate(runs):
        record = await backend.get_run(run_id)
        assert (record.version, record.status) == ((1, "running") if i == 2 else (2, "waiting"))


async def test_run_record_round_trips_and_versions_increase(backend, new_run):
    run_id = await new_run(flow="orders")
    record = await backend.get_run(run_id)
    assert (record.run_id, record.flow, record.status, record.version) == (
        run_id,
        "orders",
        "running",
        1,
    )
    assert record.input == {"n": 1}
    seen: list[RunRecord | None] = []

    def decide(stored):
        seen.append(stored)
        return Transition(
            run=bump(
                stored,
                tokens={"order.accepted": {"id": 7}, "step:a": [1, "x"]},
                started=["a", "b"],
                active=["b"],
                done={"a": "completed"},
                trigger={"name": "t", "type": "manual", "data": None},
            )
        )

    await backend.commit([CommitItem(run_id, decide)])
    assert seen == [record]
    stored = await backend.get_run(run_id)
    assert stored.version == 2
    assert stored.tokens == {"order.accepted": {"id": 7}, "step:a": [1, "x"]}
    assert (stored.started, stored.active, stored.done) == (["a", "b"], ["b"], {"a": "completed"})
    assert stored.trigger == {"name": "t", "type": "manual", "data": None}

    end = now()
    await backend.commit(
        [
            CommitItem(
                run_id,
                advance(
                    NewEvent("flow.completed", {"result": 3}),
                    status="completed",
                    completed_at=end,
                    result=3,
                    active=[],
                ),
            )
        ]
    )
    final = await backend.get_run(run_id)
    assert (final.version, final.status, final.result, final.terminal) == (3, "completed", 3, True)
    assert final.completed_at == pytest.approx(end)
    assert await backend.get_run("unknown") is None


async def test_items_of_one_batch_see_each_other(backend, new_run):
    run_id = await new_run()
    versions = []

    def decide(stored):
        versions.append(stored.version)
        return Transition(run=bump(stored), events=[NewEvent("log", {"v": stored.version})])

    out = await backend.commit([CommitItem(run_id, decide), CommitItem(run_id, decide)])
    assert versions == [1, 2]
    assert [[e["seq"] for e in events] for events in out] == [[2], [3]]
    assert (await backend.get_run(run_id)).version == 3


async def test_decide_mutating_its_argument_does_not_touch_the_store(backend, new_run):
    run_id = await new_run()

    def decide(stored):
        stored.tokens["sneaky"] = 1
        stored.started.append("x")
        return Transition()

    await backend.commit([CommitItem(run_id, decide)])
    record = await backend.get_run(run_id)
    assert record.tokens == {} and record.started == []


async def test_commit_without_a_run_applies_job_updates(backend, make_job):
    await backend.enqueue([make_job("j")])
    await backend.claim("w", None, 10, LEASE)
    seen = []

    def decide(stored):
        seen.append(stored)
        return Transition(jobs=[JobUpdate("j", "completed", result=1)])

    assert await backend.commit([CommitItem(None, decide)]) == [[]]
    assert seen == [None]
    assert (await backend.get_job("j")).state == "completed"


async def test_cancel_run_jobs_cancels_only_waiting_and_delayed_jobs_of_that_run(
    backend, new_run, make_step_job, make_job
):
    run_id = uuid7()
    other = await new_run()
    jobs = [
        make_step_job(run_id, "active"),
        make_step_job(run_id, "waiting"),
        make_step_job(run_id, "delayed", run_at=now() + 60),
    ]
    await new_run(run_id, jobs=jobs[:1])
    await backend.claim("w", None, 10, LEASE)
    await backend.enqueue([*jobs[1:], make_step_job(other, "waiting"), make_job("fn")])
    await backend.commit(
        [CommitItem(run_id, lambda s: Transition(run=bump(s), cancel_run_jobs=True))]
    )
    got = {}
    for name in ("active", "waiting", "delayed"):
        got[name] = (await backend.get_job(f"{run_id}:{name}")).state
    assert got == {"active": "active", "waiting": "canceled", "delayed": "canceled"}
    assert (await backend.get_job(f"{other}:waiting")).state == "waiting"
    assert (await backend.get_job("fn")).state == "waiting"
    assert (await backend.get_job(f"{run_id}:waiting")).finished_at is not None


async def test_enqueue_in_a_transition_dedupes_by_id(backend, new_run, make_step_job):
    run_id = uuid7()
    await new_run(run_id, jobs=[make_step_job(run_id, "a", input=1)])

    def decide(stored):
        return Transition(run=bump(stored), enqueue=[make_step_job(run_id, "a", input=2)])

    await backend.commit([CommitItem(run_id, decide)])
    assert (await backend.get_job(f"{run_id}:a")).input == 1
    assert sum((await backend.queue_counts())["q"].values()) == 1


async def test_parallel_commits_to_one_run_lose_nothing_and_join_once(
    backend, peer, new_run, make_step_job
):
    """Fan-in: N completions committed at once through two handles; the join starts once."""
    run_id = await new_run()
    parts = [f"p{i}" for i in range(12)]

    def complete(part):
        def decide(stored):
            record = bump(stored, tokens={**stored.tokens, part: True})
            t = Transition(run=record, events=[NewEvent("step.completed", {}, part, 1)])
            if all(p in record.tokens for p in parts) and "join" not in record.started:
                record.started = [*record.started, "join"]
                t.enqueue.append(make_step_job(run_id, "join"))
                t.events.append(NewEvent("log", {"message": "join started"}))
            return t

        return decide

    await asyncio.gather(
        *(
            (backend if i % 2 else peer).commit([CommitItem(run_id, complete(part))])
            for i, part in enumerate(parts)
        )
    )
    record = await backend.get_run(run_id)
    assert record.version == 1 + len(parts)
    assert set(record.tokens) == set(parts)
    assert record.started == ["join"]
    events = await backend.read_events(run_id)
    assert [e["seq"] for e in events] == list(range(1, len(parts) + 3))
    assert sum(1 for e in events if e["type"] == "log") == 1
    assert (await backend.get_job(f"{run_id}:join")).state == "waiting"


async def test_everything_survives_a_reopen(backend, backend_factory, backend_url, make_job):
    if not backend_factory.shared_url:
        pytest.skip(f"{backend_factory.name} keeps nothing when closed")
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", "running", {"x": 1}, ts, ts, version=1)
    transition = Transition(
        run=record,
        events=[NewEvent("flow.started", {"input": {"x": 1}})],
        state=[StateOp(run_id, "k", "set", [1])],
        timers=[Timer("t1", ts - 1, "stall", {"run_id": run_id})],
    )
    await backend.commit([CommitItem(run_id, lambda _: transition)])
    await backend.enqueue([make_job("j", key="k", input={"a": 1})])
    await backend.set_paused("p", True)
    await backend.close()

    reopened = create_backend(backend_url)
    await reopened.open()
    try:
        assert (await reopened.get_run(run_id)) == record
        assert [e["type"] for e in await reopened.read_events(run_id)] == ["flow.started"]
        assert await reopened.get_state(run_id, "k") == (True, [1])
        assert (await reopened.get_job("j")).input == {"a": 1}
        assert await reopened.enqueue([make_job("j2", key="k")]) == ["j"]
        assert await reopened.paused_queues() == {"p"}
        assert [t.id for t in await reopened.claim_timers(now(), 10, LEASE)] == ["t1"]
    finally:
        await reopened.close()  # the fixture closes `backend` again: close is idempotent


async def test_an_unusable_location_is_reported_as_backend_unavailable(backend_factory, tmp_path):
    if not backend_factory.shared_url:
        pytest.skip(f"{backend_factory.name} needs no location")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = backend_factory.url(blocker)  # a path below a regular file cannot be created
    b = create_backend(url)
    with pytest.raises(BackendUnavailable) as info:
        await b.open()
    assert "\n" not in str(info.value)
