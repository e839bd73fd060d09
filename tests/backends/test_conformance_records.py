"""Conformance: records (keyed collections: triggers, fires, awaits...) and timer listing."""

from __future__ import annotations

import asyncio

from flowtide._util.clock import now
from flowtide.backends.base import CommitItem, RecordOp, Timer, Transition
from flowtide.events import NewEvent, RunRecord


async def commit_records(backend, *ops, run_id=None, decide=None):
    transition = Transition(records=list(ops))
    await backend.commit([CommitItem(run_id, decide or (lambda _: transition))])


async def test_put_get_and_delete_a_record(backend):
    assert await backend.get_record("triggers", "orders-in") is None
    doc = {"name": "orders-in", "type": "webhook", "nested": {"a": [1, 2]}}
    assert await backend.put_record("triggers", "orders-in", doc) is None
    assert await backend.get_record("triggers", "orders-in") == doc
    await backend.put_record("triggers", "orders-in", {**doc, "paused": True})
    assert (await backend.get_record("triggers", "orders-in"))["paused"] is True
    assert await backend.get_record("other", "orders-in") is None
    assert await backend.delete_record("triggers", "orders-in") is True
    assert await backend.delete_record("triggers", "orders-in") is False
    assert await backend.get_record("triggers", "orders-in") is None


async def test_only_new_keeps_the_first_value_under_concurrency(backend, peer):
    results = await asyncio.gather(
        *(
            (backend if i % 2 else peer).put_record(
                "idem:t", "delivery-1", {"by": i}, only_new=True
            )
            for i in range(10)
        )
    )
    stored = await backend.get_record("idem:t", "delivery-1")
    assert results.count(None) == 1
    winner = results.index(None)
    assert stored == {"by": winner}
    assert all(r == stored for r in results if r is not None)


async def test_expired_records_are_absent(backend):
    ts = now()
    await backend.put_record("idem:t", "old", {"v": 1}, expires_at=ts - 1)
    await backend.put_record("idem:t", "live", {"v": 2}, expires_at=ts + 60)
    assert await backend.get_record("idem:t", "old") is None
    assert await backend.get_record("idem:t", "live") == {"v": 2}
    assert [k for k, _ in await backend.list_records("idem:t")] == ["live"]
    assert await backend.put_record("idem:t", "old", {"v": 3}, only_new=True) is None
    assert await backend.get_record("idem:t", "old") == {"v": 3}


async def test_list_records_in_key_order_with_paging(backend):
    for key in ["b", "d", "a", "c", "e"]:
        await backend.put_record("fires:t", key, {"k": key})
    assert [k for k, _ in await backend.list_records("fires:t")] == ["a", "b", "c", "d", "e"]
    assert await backend.list_records("fires:t", limit=2, after="b") == [
        ("c", {"k": "c"}),
        ("d", {"k": "d"}),
    ]
    newest = await backend.list_records("fires:t", limit=2, reverse=True)
    assert [k for k, _ in newest] == ["e", "d"]
    older = await backend.list_records("fires:t", limit=10, after="d", reverse=True)
    assert [k for k, _ in older] == ["c", "b", "a"]
    assert await backend.list_records("empty") == []


async def test_counters_add_atomically(backend, peer):
    await asyncio.gather(
        *((backend if i % 2 else peer).add_to_counter("stats:t", "fires") for i in range(20))
    )
    assert await backend.get_record("stats:t", "fires") == 20
    assert await backend.add_to_counter("stats:t", "fires", 5) == 25
    assert await backend.add_to_counter("stats:t", "runs", 3) == 3
    ts = now()
    assert await backend.add_to_counter("rate:t", "w1", 1, expires_at=ts - 1) == 1
    assert await backend.get_record("rate:t", "w1") is None  # created already expired
    assert await backend.add_to_counter("rate:t", "w2", 1, expires_at=ts + 60) == 1
    assert await backend.add_to_counter("rate:t", "w2", 1, expires_at=ts + 60) == 2


async def test_records_commit_with_a_transition(backend, new_run):
    await commit_records(
        backend,
        RecordOp("awaits", "a1", {"run_id": "r"}),
        RecordOp("await_tokens", "tok", {"await_id": "a1"}, expires_at=now() + 60),
    )
    assert await backend.get_record("awaits", "a1") == {"run_id": "r"}
    assert await backend.get_record("await_tokens", "tok") == {"await_id": "a1"}
    run_id = await new_run()

    def decide(stored: RunRecord | None) -> Transition:
        assert stored is not None
        record = RunRecord(
            run_id,
            stored.flow,
            "running",
            stored.input,
            stored.started_at,
            now(),
            version=stored.version + 1,
        )
        return Transition(
            run=record,
            events=[NewEvent("await.resolved", {"await_id": "a1"})],
            records=[RecordOp("awaits", "a1", None), RecordOp("awaits", "a2", {"run_id": run_id})],
        )

    await backend.commit([CommitItem(run_id, decide)])
    assert await backend.get_record("awaits", "a1") is None
    assert await backend.get_record("awaits", "a2") == {"run_id": run_id}
    assert set(await backend.record_collections()) >= {"awaits", "await_tokens"}


async def test_a_skipped_commit_writes_no_records(backend, new_run, make_step_job):
    run_id = await new_run(jobs=[make_step_job("x", "s")])

    def decide(_: RunRecord | None) -> Transition:
        return Transition(records=[RecordOp("awaits", "never", {"x": 1})])

    # attempt_of names an attempt that is not active: the whole item is skipped
    await backend.commit([CommitItem(run_id, decide, attempt_of=("x:s", 7))])
    assert await backend.get_record("awaits", "never") is None


async def test_list_timers_soonest_first(backend):
    ts = now()
    timers = [Timer("b", ts + 20, "schedule", {"n": 2}), Timer("a", ts + 10, "await", {"n": 1})]
    await backend.commit([CommitItem(None, lambda _: Transition(timers=timers))])
    listed = [(t.id, t.kind, t.data) for t in await backend.list_timers()]
    assert listed == [("a", "await", {"n": 1}), ("b", "schedule", {"n": 2})]


async def test_counter_ops_commit_with_a_transition(backend, new_run):
    await backend.put_record("stats:t", "fires", 5)
    await commit_records(
        backend,
        RecordOp("stats:t", "fires", add=1),
        RecordOp("stats:t", "fires", add=2),
        RecordOp("stats:t", "runs", add=3),
        RecordOp("rate:t", "w", add=1, expires_at=now() + 60),
        RecordOp("fires:t", "f1", {"fire_id": "f1"}),
    )
    assert await backend.get_record("stats:t", "fires") == 8
    assert await backend.get_record("stats:t", "runs") == 3
    assert await backend.get_record("rate:t", "w") == 1
    assert await backend.add_to_counter("stats:t", "runs", 1) == 4
    assert await backend.get_record("fires:t", "f1") == {"fire_id": "f1"}
