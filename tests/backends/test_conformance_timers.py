"""Conformance: timers claimed exactly once, and wake-ups on change."""

from __future__ import annotations

import asyncio
import time

from flowtide._util.clock import now
from flowtide.backends.base import CommitItem, StateOp, Timer, Transition


async def set_timers(backend, *timers, cancel=()):
    transition = Transition(timers=list(timers), cancel_timers=list(cancel))
    await backend.commit([CommitItem(None, lambda _: transition)])


# -- timers ----------------------------------------------------------------------------------------


async def test_only_due_timers_are_claimed_in_due_order(backend):
    ts = now()
    await set_timers(
        backend,
        Timer("late", ts - 1, "stall", {"run_id": "r2"}),
        Timer("early", ts - 5, "cron", {"n": 1}),
        Timer("future", ts + 3600, "stall"),
    )
    claimed = await backend.claim_timers(ts, 10, 30)
    assert [(t.id, t.kind, t.data) for t in claimed] == [
        ("early", "cron", {"n": 1}),
        ("late", "stall", {"run_id": "r2"}),
    ]
    assert await backend.claim_timers(ts, 10, 30) == []


async def test_claim_timers_respects_the_limit(backend):
    ts = now()
    await set_timers(backend, *(Timer(f"t{i}", ts - 10 + i, "k") for i in range(5)))
    first = await backend.claim_timers(ts, 2, 30)
    second = await backend.claim_timers(ts, 10, 30)
    assert [t.id for t in first] == ["t0", "t1"]
    assert [t.id for t in second] == ["t2", "t3", "t4"]


async def test_a_claimed_timer_reappears_after_the_lease_unless_deleted(backend):
    ts = now()
    await set_timers(backend, Timer("kept", ts - 1, "k"), Timer("done", ts - 1, "k"))
    assert {t.id for t in await backend.claim_timers(ts, 10, 30)} == {"kept", "done"}
    await backend.delete_timer("done")
    assert await backend.claim_timers(ts + 29, 10, 30) == []
    again = await backend.claim_timers(ts + 31, 10, 30)
    assert [t.id for t in again] == ["kept"]
    assert await backend.claim_timers(ts + 31, 10, 30) == []
    await backend.delete_timer("kept")
    await backend.delete_timer("never-existed")
    assert await backend.claim_timers(ts + 3600, 10, 30) == []


async def test_setting_a_timer_again_replaces_it_and_commits_can_cancel_timers(backend):
    ts = now()
    await set_timers(backend, Timer("t", ts - 1, "k", 1), Timer("c", ts - 1, "k"))
    await set_timers(backend, Timer("t", ts + 100, "k", 2), cancel=["c"])
    assert await backend.claim_timers(ts, 10, 30) == []
    (timer,) = await backend.claim_timers(ts + 101, 10, 30)
    assert (timer.id, timer.data) == ("t", 2)


async def test_concurrent_claimers_get_disjoint_timers(backend, peer):
    ts = now()
    ids = {f"t{i:02}" for i in range(30)}
    await set_timers(backend, *(Timer(i, ts - 1, "k") for i in sorted(ids)))

    async def claimer(b):
        got = []
        while batch := await b.claim_timers(ts, 4, 60):
            got += [t.id for t in batch]
        return got

    results = await asyncio.gather(claimer(backend), claimer(peer), claimer(backend), claimer(peer))
    flat = [t for r in results for t in r]
    assert len(flat) == len(set(flat))
    assert set(flat) == ids


# -- wake-ups --------------------------------------------------------------------------------------


async def waiter_started(backend, timeout):
    task = asyncio.create_task(backend.wait_for_change(timeout))
    await asyncio.sleep(0)  # let it register before the change happens
    return task


async def test_wait_for_change_returns_after_its_timeout(backend):
    started = time.monotonic()
    await asyncio.wait_for(backend.wait_for_change(0.05), 5)
    assert time.monotonic() - started >= 0.04


async def test_wait_for_change_wakes_on_enqueue(backend, make_job):
    task = await waiter_started(backend, 30)
    started = time.monotonic()
    await backend.enqueue([make_job("j")])
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5


async def test_wait_for_change_wakes_on_commit(backend):
    task = await waiter_started(backend, 30)
    transition = Transition(state=[StateOp("s", "k", "set", 1)])
    await backend.commit([CommitItem(None, lambda _: transition)])
    await asyncio.wait_for(task, 5)


async def test_wait_for_change_wakes_on_a_change_made_through_another_handle(
    backend, peer, make_job
):
    task = await waiter_started(backend, 30)
    await peer.enqueue([make_job("j")])
    await asyncio.wait_for(task, 5)
