"""Conformance: event sequence numbers, reading events, the lifecycle feed, listing runs, state."""

from __future__ import annotations

import dataclasses

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends.base import CommitItem, StateOp, Transition
from flowtide.events import LIFECYCLE_TYPES, NewEvent, RunRecord

LEASE = 30.0


def bump(record: RunRecord, **changes) -> RunRecord:
    return dataclasses.replace(record, version=record.version + 1, updated_at=now(), **changes)


async def commit_events(backend, run_id, *events, **changes):
    def decide(stored):
        return Transition(run=bump(stored, **changes), events=list(events))

    (out,) = await backend.commit([CommitItem(run_id, decide)])
    return out


async def commit_state(backend, *ops, clear=None):
    transition = Transition(state=list(ops), clear_state=clear)
    await backend.commit([CommitItem(None, lambda _: transition)])


# -- events ----------------------------------------------------------------------------------------


async def test_events_are_numbered_1_to_n_per_run(backend, new_run, make_step_job):
    run_a = uuid7()
    await new_run(run_a, flow="fa", jobs=[make_step_job(run_a, "s", flow="fa")])
    run_b = await new_run(flow="fb")
    out = await commit_events(backend, run_a, NewEvent("emit", {"name": "x"}, "s", 1))
    assert [e["seq"] for e in out] == [2]
    await backend.claim("w", None, 10, LEASE)  # step.started of run_a
    appended = await backend.append_events(
        run_a, [NewEvent("log", {"message": "hi"}, "s", 1), NewEvent("log", {"message": "2"})]
    )
    assert [e["seq"] for e in appended] == [4, 5]
    await commit_events(backend, run_b, NewEvent("flow.completed", {"result": None}))
    out = await commit_events(
        backend,
        run_a,
        NewEvent("step.completed", {"result": 1}, "s", 1),
        NewEvent("flow.completed"),
    )
    assert [e["seq"] for e in out] == [6, 7]

    events = await backend.read_events(run_a)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [e["type"] for e in events] == [
        "flow.started",
        "emit",
        "step.started",
        "log",
        "log",
        "step.completed",
        "flow.completed",
    ]
    assert len({e["id"] for e in events}) == 7
    for event in events:
        assert event["run_id"] == run_a and event["flow"] == "fa"
        assert event["ts"].endswith("Z")
    assert events[3]["step"] == "s" and events[3]["attempt"] == 1
    assert events[3]["data"] == {"message": "hi"}
    assert [e["seq"] for e in await backend.read_events(run_b)] == [1, 2]


async def test_read_events_after_and_limit(backend, new_run):
    run_id = await new_run()
    await backend.append_events(run_id, [NewEvent("log", {"i": i}) for i in range(9)])
    assert [e["seq"] for e in await backend.read_events(run_id, after=3)] == list(range(4, 11))
    assert [e["seq"] for e in await backend.read_events(run_id, after=3, limit=2)] == [4, 5]
    assert [e["seq"] for e in await backend.read_events(run_id, limit=1)] == [1]
    assert await backend.read_events(run_id, after=10) == []
    assert await backend.read_events(run_id, after=4, limit=0) == []
    assert await backend.read_events("unknown") == []


async def test_append_events_to_an_unknown_run_appends_nothing(backend):
    assert await backend.append_events("unknown", [NewEvent("log", {})]) == []
    assert await backend.read_events("unknown") == []


async def test_read_feed_has_lifecycle_events_only_by_a_cursor(backend, new_run):
    run_a = await new_run()
    run_b = await new_run()
    await backend.append_events(run_a, [NewEvent("log", {}), NewEvent("state", {"key": "k"})])
    await commit_events(backend, run_a, NewEvent("emit", {"name": "x"}, "s", 1))
    await commit_events(backend, run_b, NewEvent("step.completed", {}, "s", 1))
    await commit_events(backend, run_a, NewEvent("flow.completed"), status="completed")

    feed = await backend.read_feed(0)
    assert [(ev["run_id"], ev["type"]) for _, ev in feed] == [
        (run_a, "flow.started"),
        (run_b, "flow.started"),
        (run_b, "step.completed"),
        (run_a, "flow.completed"),
    ]
    assert all(ev["type"] in LIFECYCLE_TYPES for _, ev in feed)
    cursors = [cursor for cursor, _ in feed]
    assert cursors == sorted(set(cursors))
    assert [ev["type"] for _, ev in await backend.read_feed(cursors[1])] == [
        "step.completed",
        "flow.completed",
    ]
    assert len(await backend.read_feed(0, limit=2)) == 2
    assert await backend.read_feed(cursors[-1]) == []
    # events appended later continue after the cursor
    await backend.append_events(run_b, [NewEvent("step.failed", {}, "t", 1)])
    (later,) = await backend.read_feed(cursors[-1])
    assert later[0] > cursors[-1] and later[1]["type"] == "step.failed"


# -- listing runs ----------------------------------------------------------------------------------


async def test_list_runs_newest_first_with_pagination(backend, new_run):
    ids = [await new_run(flow="a" if i % 2 else "b") for i in range(7)]
    newest_first = ids[::-1]
    seen, cursor, pages = [], None, 0
    while True:
        page = await backend.list_runs(limit=3, cursor=cursor)
        pages += 1
        seen += [r.run_id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 10
    assert seen == newest_first
    assert pages == 3
    assert isinstance(page.items[0], RunRecord)
    exact = await backend.list_runs(limit=7)
    assert len(exact.items) == 7 and exact.next_cursor is None


async def test_list_runs_filters_by_flow_and_status(backend, new_run):
    a1 = await new_run(flow="a")
    b1 = await new_run(flow="b")
    a2 = await new_run(flow="a", status="failed")
    a3 = await new_run(flow="a")
    await commit_events(backend, b1, NewEvent("flow.completed"), status="completed")

    assert [r.run_id for r in (await backend.list_runs(flow="a")).items] == [a3, a2, a1]
    assert [r.run_id for r in (await backend.list_runs(status="running")).items] == [a3, a1]
    assert [r.run_id for r in (await backend.list_runs(status="completed")).items] == [b1]
    both = await backend.list_runs(flow="a", status="running", limit=1)
    assert [r.run_id for r in both.items] == [a3]
    rest = await backend.list_runs(flow="a", status="running", limit=1, cursor=both.next_cursor)
    assert [r.run_id for r in rest.items] == [a1]
    assert rest.next_cursor is None
    assert (await backend.list_runs(flow="nope")).items == []


# -- state -----------------------------------------------------------------------------------------


async def test_state_set_get_delete(backend):
    await commit_state(
        backend,
        StateOp("s1", "a", "set", {"x": [1, 2]}),
        StateOp("s1", "none", "set", None),
        StateOp("s2", "a", "set", "other scope"),
    )
    assert await backend.get_state("s1", "a") == (True, {"x": [1, 2]})
    assert await backend.get_state("s1", "none") == (True, None)
    assert await backend.get_state("s1", "missing") == (False, None)
    assert await backend.get_state("s2", "a") == (True, "other scope")
    await commit_state(backend, StateOp("s1", "a", "set", 2), StateOp("s1", "none", "delete"))
    assert await backend.state_items("s1") == {"a": 2}
    assert await backend.state_items("s2") == {"a": "other scope"}
    assert await backend.state_items("empty") == {}


async def test_state_ttl_expiry(backend, wait_until):
    ts = now()
    await commit_state(
        backend,
        StateOp("s", "gone", "set", 1, expires_at=ts - 1),
        StateOp("s", "soon", "set", 2, expires_at=ts + 0.3),
        StateOp("s", "kept", "set", 3, expires_at=ts + 3600),
        StateOp("s", "forever", "set", 4),
    )
    assert await backend.get_state("s", "gone") == (False, None)
    assert await backend.get_state("s", "soon") == (True, 2)
    assert await backend.state_items("s") == {"soon": 2, "kept": 3, "forever": 4}

    async def soon_expired():
        return await backend.get_state("s", "soon") == (False, None)

    await wait_until(soon_expired, timeout=5)
    assert now() >= ts + 0.3
    assert await backend.state_items("s") == {"kept": 3, "forever": 4}
    # setting again without a ttl makes the value permanent
    await commit_state(backend, StateOp("s", "gone", "set", 5))
    assert await backend.get_state("s", "gone") == (True, 5)


async def test_state_clear_removes_one_scope(backend):
    await commit_state(backend, StateOp("s1", "a", "set", 1), StateOp("s2", "a", "set", 2))
    await commit_state(backend, clear="s1")
    assert await backend.state_items("s1") == {}
    assert await backend.state_items("s2") == {"a": 2}


async def test_state_ops_apply_in_order_within_one_transition(backend):
    await commit_state(
        backend,
        StateOp("s", "k", "set", 1),
        StateOp("s", "k", "delete"),
        StateOp("s", "j", "delete"),
        StateOp("s", "j", "set", 2),
    )
    assert await backend.state_items("s") == {"j": 2}
