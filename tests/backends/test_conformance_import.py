"""Conformance: the migration operations (export_state, export_records, import_run,
import_jobs) write runs and jobs exactly as they were, and what they write behaves like
anything else the backend stored (listings, the feed, counts, claims, commits)."""

from __future__ import annotations

import asyncio
import dataclasses

from flowtide._util.clock import iso, now
from flowtide._util.ids import uuid7
from flowtide.backends.base import (
    CommitItem,
    Job,
    RecordOp,
    RunImport,
    StateOp,
    Timer,
    Transition,
)
from flowtide.events import LIFECYCLE_TYPES, NewEvent, RunRecord

T0 = 1_700_000_000.125  # a time in the past, with milliseconds


def _event(run_id, seq, type_, ts, step=None, attempt=None, data=None, flow="orders"):
    return {
        "seq": seq,
        "id": f"{run_id}:{seq}",
        "ts": iso(ts),
        "type": type_,
        "run_id": run_id,
        "flow": flow,
        "step": step,
        "attempt": attempt,
        "data": data,
    }


def sample_run(run_id=None, *, status="completed", flow="orders"):
    run_id = run_id or uuid7()
    done = status in ("completed", "failed", "canceled", "stalled")
    record = RunRecord(
        run_id,
        flow,
        status,
        {"id": 7, "items": [1, 2.5, "x"], "nested": {"a": None}},
        T0,
        T0 + 2.5,
        version=4,
        trigger={"name": "orders-in", "type": "webhook", "data": {"k": 1}},
        completed_at=T0 + 2.5 if done else None,
        tokens={"order.accepted": {"id": 7}},
        started=["accept", "charge"],
        active=[] if done else ["charge"],
        done={"accept": "completed", "charge": "completed"} if done else {"accept": "completed"},
        result={"ok": True} if status == "completed" else None,
    )
    events = [
        _event(run_id, 1, "flow.started", T0, data={"input": record.input, "trigger": None}),
        _event(run_id, 2, "step.started", T0 + 0.001, "accept", 1),
        _event(run_id, 3, "log", T0 + 0.002, "accept", 1, {"level": "info", "message": "hi"}),
        _event(run_id, 4, "state", T0 + 0.003, "accept", 1, {"key": "k", "op": "set", "value": 1}),
        _event(run_id, 5, "emit", T0 + 0.004, "accept", 1, {"name": "order.accepted"}),
        _event(run_id, 6, "step.completed", T0 + 0.5, "accept", 1, {"result": {"a": 1}}),
    ]
    if done:
        events.append(_event(run_id, 7, f"flow.{status}", T0 + 2.5, data={"result": {"ok": True}}))
    return RunImport(record, events)


def _job(job_id, state, **fields):
    base = {
        "queue": "mail",
        "name": "send",
        "input": {"to": "a@b.c", "n": 1.5},
        "attempt": 2,
        "priority": 3,
        "run_at": T0 + 1,
        "created_at": T0,
        "reclaims": 1,
    }
    base.update(fields)
    return Job(id=job_id, state=state, **base)


def _without_lease(job):
    return dataclasses.replace(job, worker=None, lease_until=None)


async def test_import_run_writes_everything_verbatim(backend):
    run = sample_run()
    rid = run.record.run_id
    run.state = {"order": ({"id": 7}, None), "session": ("s", now() + 3600)}
    run.jobs = [
        _job(f"{rid}:accept", "completed", run_id=rid, flow="orders", name="accept",
             finished_at=T0 + 0.5, result={"a": 1}),
    ]  # fmt: skip
    run.timers = [Timer(f"stall:{rid}", now() + 600, "stall", {"run_id": rid})]
    run.records = [RecordOp("awaits", f"{rid}:ship:before", {"run_id": rid, "step": "ship"})]

    assert await backend.import_run(run) is True

    assert await backend.get_run(rid) == run.record
    assert await backend.read_events(rid) == run.events
    assert await backend.read_events(rid, after=3, limit=2) == run.events[3:5]
    assert await backend.state_items(rid) == {"order": {"id": 7}, "session": "s"}
    exported = await backend.export_state(rid)
    assert exported["order"] == ({"id": 7}, None)
    assert exported["session"][0] == "s"
    assert abs(exported["session"][1] - run.state["session"][1]) < 1e-6
    job = await backend.get_job(f"{rid}:accept")
    assert job == run.jobs[0]
    assert [t.id for t in await backend.list_timers()] == [f"stall:{rid}"]
    assert await backend.get_record("awaits", f"{rid}:ship:before") == run.records[0].value


async def test_an_imported_run_is_listed_and_in_the_feed(backend):
    older = sample_run(uuid7(), status="completed")
    middle = sample_run(uuid7(), status="awaiting", flow="other")
    newer = sample_run(uuid7(), status="failed")
    # imported out of order (migration goes newest first): listings are still by id
    for run in (newer, older, middle):
        assert await backend.import_run(run)
    page = await backend.list_runs()
    assert [r.run_id for r in page.items] == [
        newer.record.run_id,
        middle.record.run_id,
        older.record.run_id,
    ]
    first = await backend.list_runs(limit=2)
    rest = await backend.list_runs(limit=2, cursor=first.next_cursor)
    assert [r.run_id for r in first.items + rest.items] == [r.run_id for r in page.items]
    assert [r.run_id for r in (await backend.list_runs(status="awaiting")).items] == [
        middle.record.run_id
    ]
    assert [r.run_id for r in (await backend.list_runs(flow="other")).items] == [
        middle.record.run_id
    ]

    feed = await backend.read_feed(0, 1000)
    cursors = [gid for gid, _ in feed]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    for run in (older, middle, newer):
        mine = [e for _, e in feed if e["run_id"] == run.record.run_id]
        assert mine == [e for e in run.events if e["type"] in LIFECYCLE_TYPES]


async def test_importing_a_run_twice_writes_nothing_the_second_time(backend):
    run = sample_run(status="awaiting")
    rid = run.record.run_id
    assert await backend.import_run(run) is True
    other = sample_run(rid, status="failed")
    other.state = {"x": (1, None)}
    other.timers = [Timer("t-other", now() + 60, "stall", {"run_id": rid})]
    other.records = [RecordOp("awaits", "other", {"run_id": rid})]
    assert await backend.import_run(other) is False
    assert (await backend.get_run(rid)).status == "awaiting"
    assert await backend.read_events(rid) == run.events
    assert await backend.state_items(rid) == {}
    assert await backend.list_timers() == []
    assert await backend.get_record("awaits", "other") is None
    assert len((await backend.list_runs()).items) == 1


async def test_an_imported_run_goes_on_like_any_other(backend):
    run = sample_run(status="running")
    rid = run.record.run_id
    run.jobs = [
        _job(f"{rid}:charge", "waiting", run_id=rid, flow="orders", name="charge",
             queue="payments", attempt=0, reclaims=0, run_at=now() - 1),
    ]  # fmt: skip
    assert await backend.import_run(run)

    [claimed] = await backend.claim("w1", ["payments"], 5, 30)
    assert claimed.id == f"{rid}:charge" and claimed.attempt == 1
    events = await backend.read_events(rid)
    assert events[-1]["type"] == "step.started" and events[-1]["seq"] == len(run.events) + 1

    def finish(stored: RunRecord | None) -> Transition:
        assert stored == run.record
        record = dataclasses.replace(stored, status="completed", version=stored.version + 1)
        record.completed_at = now()
        return Transition(
            run=record,
            events=[NewEvent("step.completed", {"result": 1}, "charge", 1),
                    NewEvent("flow.completed", {"result": 1})],
        )  # fmt: skip

    [appended] = await backend.commit([CommitItem(rid, finish)])
    assert [e["seq"] for e in appended] == [len(run.events) + 2, len(run.events) + 3]
    assert (await backend.get_run(rid)).status == "completed"
    assert [r.run_id for r in (await backend.list_runs(status="completed")).items] == [rid]
    assert (await backend.list_runs(status="running")).items == []
    logged = await backend.append_events(rid, [NewEvent("log", {"message": "after"})])
    assert logged[0]["seq"] == len(run.events) + 4


async def test_import_jobs_keeps_every_field_and_state(backend):
    ts = now()
    jobs = [
        _job("j-wait", "waiting", run_at=ts - 5),
        _job("j-delay", "delayed", run_at=ts + 3600, key="k1"),
        _job("j-done", "completed", finished_at=T0 + 2, result={"sent": True}),
        _job("j-fail", "failed", finished_at=T0 + 3, error={"type": "X", "message": "no"}),
        _job("j-cancel", "canceled", finished_at=T0 + 4, queue="other"),
    ]
    state = {"j-fail": {"tries": (3, None)}, "j-wait": {"draft": ("x", ts + 600)}}
    assert await backend.import_jobs(jobs, state) == [j.id for j in jobs]
    for job in jobs:
        assert await backend.get_job(job.id) == job
    counts = await backend.queue_counts()
    assert counts["mail"] == {"waiting": 1, "delayed": 1, "completed": 1, "failed": 1}
    assert counts["other"] == {"canceled": 1}
    listed = (await backend.list_jobs("mail")).items
    assert [j.id for j in listed] == ["j-fail", "j-done", "j-delay", "j-wait"]
    assert [j.id for j in (await backend.list_jobs("mail", "failed")).items] == ["j-fail"]
    assert await backend.state_items("job:j-fail") == {"tries": 3}
    assert await backend.state_items("job:j-wait") == {"draft": "x"}
    assert (await backend.export_state("job:j-wait"))["draft"][1] is not None

    # again: nothing is inserted twice, and state stays as it was
    again = [dataclasses.replace(j, input="changed") for j in jobs]
    assert await backend.import_jobs(again, {"j-done": {"new": (1, None)}}) == []
    assert (await backend.get_job("j-wait")).input == jobs[0].input
    assert await backend.state_items("job:j-done") == {}


async def test_imported_jobs_are_claimed_in_due_order(backend):
    ts = now()
    await backend.import_jobs(
        [
            _job("later", "delayed", run_at=ts + 0.3, attempt=0, reclaims=0, priority=0),
            _job("low", "waiting", run_at=ts - 2, attempt=0, reclaims=0, priority=0),
            _job("high", "waiting", run_at=ts - 1, attempt=1, reclaims=0, priority=5),
            _job("done", "completed", finished_at=ts - 1),
        ]
    )
    first = [*await backend.claim("w", None, 1, 30), *await backend.claim("w", None, 10, 30)]
    assert [j.id for j in first] == ["high", "low"]
    assert [j.attempt for j in first] == [2, 1]
    for _ in range(100):
        later = await backend.claim("w", None, 10, 30)
        if later:
            break
        await asyncio.sleep(0.02)
    assert [j.id for j in later] == ["later"]
    counts = await backend.queue_counts()
    assert counts["mail"] == {"active": 3, "completed": 1}


async def test_an_imported_active_job_is_reclaimed_when_its_lease_ran_out(backend):
    ts = now()
    job = _job("leased", "active", run_at=ts - 10, worker="old-worker", lease_until=ts - 1)
    assert await backend.import_jobs([job]) == ["leased"]
    assert (await backend.queue_counts())["mail"] == {"active": 1}
    [claimed] = await backend.claim("new-worker", None, 5, 30)
    assert claimed.id == "leased" and claimed.worker == "new-worker"
    assert claimed.attempt == job.attempt + 1 and claimed.reclaims == job.reclaims + 1


async def test_import_jobs_respects_unfinished_keys(backend, make_job):
    [held] = await backend.enqueue([make_job("live", queue="mail", key="once")])
    assert held == "live"
    ts = now()
    imported = await backend.import_jobs(
        [
            _job("clash", "waiting", key="once", run_at=ts),  # an unfinished job holds "once"
            _job("old", "completed", key="once", finished_at=ts),  # finished: no clash
            _job("fresh", "delayed", key="other", run_at=ts + 60),
        ]
    )
    assert imported == ["old", "fresh"]
    assert await backend.get_job("clash") is None
    # the imported key dedupes later enqueues like any other
    assert await backend.enqueue([make_job("dup", queue="mail", key="other")]) == ["fresh"]


async def test_export_records_pages_with_expiry(backend):
    ts = now()
    await backend.put_record("idem:t", "b", {"v": 2}, expires_at=ts + 600)
    await backend.put_record("idem:t", "a", {"v": 1})
    await backend.put_record("idem:t", "c", {"v": 3})
    await backend.put_record("idem:t", "gone", {"v": 0}, expires_at=ts - 1)
    first = await backend.export_records("idem:t", 2)
    assert first[0] == ("a", {"v": 1}, None)
    assert first[1][0] == "b" and abs(first[1][2] - (ts + 600)) < 1e-6
    rest = await backend.export_records("idem:t", 10, after="b")
    assert rest == [("c", {"v": 3}, None)]
    assert await backend.export_records("nothing") == []


async def test_import_run_records_and_timers_join_the_shared_ones(backend):
    rid = uuid7()
    run = sample_run(rid, status="awaiting")
    due = now() - 1
    run.timers = [Timer(f"await:{rid}:ship:before", due, "await", {"run_id": rid})]
    run.records = [
        RecordOp("await_tokens", "tok", {"run_id": rid}, now() + 3600),
        RecordOp("awaits", f"{rid}:ship:before", {"run_id": rid}),
    ]
    await backend.put_record("awaits", "zzz-other", {"run_id": "other"})
    assert await backend.import_run(run)
    assert [k for k, _ in await backend.list_records("awaits")] == [
        f"{rid}:ship:before",
        "zzz-other",
    ]
    [(key, value, expires)] = await backend.export_records("await_tokens")
    assert key == "tok" and value == {"run_id": rid} and expires is not None
    [timer] = await backend.claim_timers(now(), 10, 30)
    assert timer.id == f"await:{rid}:ship:before" and timer.data == {"run_id": rid}
    await backend.delete_timer(timer.id)
    assert await backend.list_timers() == []


async def test_a_state_op_on_an_imported_run_scope_works(backend):
    run = sample_run(status="running")
    rid = run.record.run_id
    run.state = {"a": (1, None), "b": (2, None)}
    assert await backend.import_run(run)
    transition = Transition(state=[StateOp(rid, "a", "delete"), StateOp(rid, "c", "set", 3)])
    await backend.commit([CommitItem(None, lambda _: transition)])
    assert await backend.state_items(rid) == {"b": 2, "c": 3}
