"""Conformance: jobs (enqueue, dedupe, claim, leases, heartbeats, release, listing, deletion).

Every test runs against every backend in ``FACTORIES`` (tests/backends/conftest.py).
"""

from __future__ import annotations

import asyncio

import pytest

from flowtide._util.clock import now
from flowtide.backends.base import CommitItem, JobUpdate, Transition

LEASE = 30.0


async def finish(backend, job_id, state="completed", **fields):
    """Apply a job update outside any run (what a standalone function's outcome does)."""
    update = JobUpdate(job_id, state, **fields)
    await backend.commit([CommitItem(None, lambda _: Transition(jobs=[update]))])


async def claim_ids(backend, worker="w", queues=None, limit=10, lease=LEASE, exclude=()):
    return [j.id for j in await backend.claim(worker, queues, limit, lease, exclude)]


# -- enqueue and dedupe ----------------------------------------------------------------------------


async def test_enqueue_stores_the_job_waiting(backend, make_job):
    job = make_job("j1", queue="mail", name="send", input={"to": "a@b.c"}, priority=3, key="k")
    assert await backend.enqueue([job]) == ["j1"]
    stored = await backend.get_job("j1")
    assert stored is not None
    assert (stored.queue, stored.name, stored.input, stored.priority, stored.key) == (
        "mail",
        "send",
        {"to": "a@b.c"},
        3,
        "k",
    )
    assert stored.state == "waiting"
    assert stored.attempt == 0
    assert stored.run_id is None and stored.kind == "function"
    assert stored.created_at > 0 and stored.run_at > 0
    assert await backend.get_job("nope") is None


async def test_enqueue_dedupes_by_id(backend, make_job):
    assert await backend.enqueue([make_job("j1", input=1)]) == ["j1"]
    assert await backend.enqueue([make_job("j1", input=2)]) == ["j1"]
    assert (await backend.get_job("j1")).input == 1
    assert (await backend.queue_counts())["q"] == {"waiting": 1}


async def test_enqueue_dedupes_by_id_even_when_the_job_finished(backend, make_job):
    await backend.enqueue([make_job("j1", input=1)])
    await claim_ids(backend)
    await finish(backend, "j1", result="done")
    assert await backend.enqueue([make_job("j1", input=2)]) == ["j1"]
    job = await backend.get_job("j1")
    assert (job.state, job.input, job.result) == ("completed", 1, "done")


async def test_key_dedupes_waiting_delayed_and_active_jobs_of_the_same_queue(backend, make_job):
    (first,) = await backend.enqueue([make_job("a", key="k")])
    assert first == "a"
    # waiting
    assert await backend.enqueue([make_job("b", key="k")]) == ["a"]
    # another queue: not a duplicate
    assert await backend.enqueue([make_job("c", key="k", queue="other")]) == ["c"]
    # active
    assert await claim_ids(backend, queues=["q"]) == ["a"]
    assert await backend.enqueue([make_job("d", key="k")]) == ["a"]
    # finished: the key is free again
    await finish(backend, "a")
    assert await backend.enqueue([make_job("e", key="k", run_at=now() + 60)]) == ["e"]
    # delayed
    assert (await backend.get_job("e")).state == "delayed"
    assert await backend.enqueue([make_job("f", key="k")]) == ["e"]
    for dropped in ("b", "d", "f"):
        assert await backend.get_job(dropped) is None


async def test_key_dedupes_within_one_batch(backend, make_job):
    ids = await backend.enqueue([make_job("a", key="k"), make_job("b", key="k"), make_job("c")])
    assert ids == ["a", "a", "c"]
    assert await backend.get_job("b") is None


async def test_key_is_free_after_the_job_failed_or_was_deleted(backend, make_job):
    await backend.enqueue([make_job("a", key="k")])
    await claim_ids(backend)
    await finish(backend, "a", "failed", error={"type": "X", "message": "x"})
    assert await backend.enqueue([make_job("b", key="k")]) == ["b"]
    assert await backend.delete_job("b") is True
    assert await backend.enqueue([make_job("c", key="k")]) == ["c"]


# -- claim -----------------------------------------------------------------------------------------


async def test_claim_takes_highest_priority_then_oldest(backend, make_job):
    await backend.enqueue([make_job("low-old", priority=0)])
    await backend.enqueue([make_job("high", priority=5, queue="q2")])
    await backend.enqueue([make_job("low-new", priority=0)])
    await backend.enqueue([make_job("mid", priority=1)])
    order = [await claim_ids(backend, limit=1) for _ in range(5)]
    assert order == [["high"], ["mid"], ["low-old"], ["low-new"], []]


async def test_age_is_the_time_a_job_became_due(backend, make_job, wait_until):
    """A delayed job or a retry queues behind jobs that were due before it (FIFO by run_at)."""
    await backend.enqueue([make_job("retried")])
    await backend.claim("w", None, 1, LEASE)
    await backend.enqueue([make_job("delayed", run_at=now() + 0.2)])
    await backend.enqueue([make_job("first")])
    await finish(backend, "retried", "waiting", error={"type": "E", "message": "again"})
    await backend.enqueue([make_job("second")])
    delayed = await backend.get_job("delayed")
    await wait_until(lambda: now() > delayed.run_at, timeout=5)
    await backend.enqueue([make_job("third")])
    order = [await claim_ids(backend, limit=1) for _ in range(5)]
    assert order == [["first"], ["retried"], ["second"], ["delayed"], ["third"]]


async def test_claim_keeps_the_order_of_one_batch(backend, make_job):
    ids = [f"j{i}" for i in range(5)]
    await backend.enqueue([make_job(i) for i in ids])
    assert await claim_ids(backend, limit=3) == ids[:3]
    assert await claim_ids(backend, limit=3) == ids[3:]


async def test_claim_honours_queues_exclude_and_limit(backend, make_job):
    await backend.enqueue([make_job("a1", queue="a"), make_job("b1", queue="b")])
    await backend.enqueue([make_job("c1", queue="c"), make_job("a2", queue="a")])
    assert await claim_ids(backend, queues=["b"]) == ["b1"]
    assert await claim_ids(backend, queues=[]) == []
    assert await claim_ids(backend, exclude=["a"]) == ["c1"]
    assert await claim_ids(backend, queues=["a"], limit=1) == ["a1"]
    assert await claim_ids(backend) == ["a2"]
    assert await claim_ids(backend) == []


async def test_claim_increments_attempt_and_leases_the_job(backend, make_job):
    await backend.enqueue([make_job("j")])
    before = now()
    (job,) = await backend.claim("w1", None, 10, LEASE)
    assert (job.id, job.state, job.attempt, job.worker, job.reclaims) == ("j", "active", 1, "w1", 0)
    stored = await backend.get_job("j")
    assert (stored.state, stored.attempt, stored.worker) == ("active", 1, "w1")
    assert before + LEASE - 1 <= stored.lease_until <= now() + LEASE
    assert await claim_ids(backend, "w2") == []


async def test_delayed_jobs_are_not_claimed_before_run_at(backend, make_job, wait_until):
    run_at = now() + 0.3
    await backend.enqueue([make_job("later", run_at=run_at), make_job("now")])
    assert (await backend.get_job("later")).state == "delayed"
    assert await claim_ids(backend) == ["now"]
    assert await claim_ids(backend) == []
    claimed = await wait_until(lambda: backend.claim("w", None, 10, LEASE), timeout=5)
    assert now() >= run_at
    assert [j.id for j in claimed] == ["later"]
    assert claimed[0].attempt == 1


async def test_paused_queues_are_not_claimed(backend, make_job):
    await backend.set_paused("slow", True)
    assert await backend.paused_queues() == {"slow"}
    await backend.enqueue([make_job("s", queue="slow"), make_job("f", queue="fast")])
    assert await claim_ids(backend) == ["f"]
    assert await claim_ids(backend, queues=["slow"]) == []
    counts = await backend.queue_counts()
    assert counts["slow"] == {"waiting": 1}
    await backend.set_paused("slow", False)
    assert await backend.paused_queues() == set()
    assert await claim_ids(backend) == ["s"]


async def test_paused_queue_is_listed_even_without_jobs(backend):
    await backend.set_paused("idle", True)
    counts = await backend.queue_counts()
    assert "idle" in counts
    assert sum(counts["idle"].values()) == 0


# -- leases ----------------------------------------------------------------------------------------


async def test_expired_lease_is_reclaimed(backend, new_run, make_step_job, wait_until):
    run_id = await new_run()
    await backend.enqueue([make_step_job(run_id, "charge")])
    (first,) = await backend.claim("w1", None, 10, 0.2)
    assert first.attempt == 1
    assert await claim_ids(backend, "w2") == []  # still leased
    job_id = f"{run_id}:charge"

    reclaimed = await wait_until(lambda: backend.claim("w2", None, 10, LEASE), timeout=5)
    assert [j.id for j in reclaimed] == [job_id]
    job = reclaimed[0]
    assert (job.attempt, job.reclaims, job.worker, job.state) == (2, 1, "w2", "active")
    stored = await backend.get_job(job_id)
    assert (stored.attempt, stored.reclaims, stored.worker) == (2, 1, "w2")
    # the first worker lost it
    assert await backend.heartbeat("w1", [job_id], LEASE) == []

    events = await backend.read_events(run_id)
    assert [(e["type"], e["step"], e["attempt"]) for e in events] == [
        ("flow.started", None, None),
        ("step.started", "charge", 1),
        ("step.retrying", "charge", 1),
        ("step.started", "charge", 2),
    ]
    retrying = events[2]["data"]
    assert retrying["error"]["type"] == "LeaseExpired"
    assert retrying["next_attempt"] == 2


async def test_expired_lease_of_a_function_job_is_reclaimed(backend, make_job, wait_until):
    await backend.enqueue([make_job("j")])
    await backend.claim("w1", None, 10, 0.1)
    reclaimed = await wait_until(lambda: backend.claim("w2", None, 10, LEASE), timeout=5)
    assert [(j.id, j.attempt, j.reclaims) for j in reclaimed] == [("j", 2, 1)]


async def test_expired_lease_in_a_paused_queue_is_not_reclaimed(backend, make_job, wait_until):
    await backend.enqueue([make_job("j")])
    (job,) = await backend.claim("w1", None, 10, 0.05)
    await backend.set_paused("q", True)
    await wait_until(lambda: now() > job.lease_until + 0.05)
    assert await claim_ids(backend, "w2") == []
    await backend.set_paused("q", False)
    assert await claim_ids(backend, "w2") == ["j"]


async def test_heartbeat_extends_leases_and_reports_held_ids(backend, make_job, wait_until):
    await backend.enqueue([make_job("a"), make_job("b"), make_job("c")])
    claimed = await backend.claim("w1", None, 2, 0.2)
    assert [j.id for j in claimed] == ["a", "b"]
    await backend.claim("w2", None, 1, LEASE)  # c belongs to w2

    held = await backend.heartbeat("w1", ["a", "b", "c", "missing"], LEASE)
    assert sorted(held) == ["a", "b"]
    assert (await backend.get_job("a")).lease_until > now() + LEASE - 5
    # after the original lease would have run out, nobody can reclaim the jobs
    await wait_until(lambda: now() > claimed[0].lease_until + 0.1)
    assert await claim_ids(backend, "w3") == []
    # a finished job is no longer held
    await finish(backend, "a")
    assert await backend.heartbeat("w1", ["a", "b"], LEASE) == ["b"]
    assert await backend.heartbeat("w2", ["a", "b"], LEASE) == []


async def test_release_gives_jobs_back_without_counting_the_attempt(backend, make_job):
    await backend.enqueue([make_job("a"), make_job("b")])
    await backend.claim("w1", None, 2, LEASE)
    await backend.release("w2", ["a"])  # not w2's job: nothing happens
    assert (await backend.get_job("a")).state == "active"
    await backend.release("w1", ["a"])
    a = await backend.get_job("a")
    assert (a.state, a.attempt, a.worker) == ("waiting", 0, None)
    assert (await backend.get_job("b")).state == "active"
    (again,) = await backend.claim("w2", None, 10, LEASE)
    assert (again.id, again.attempt) == ("a", 1)


# -- job updates through commit --------------------------------------------------------------------


async def test_job_update_requeues_with_a_delay_and_can_reset_attempts(
    backend, make_job, wait_until
):
    await backend.enqueue([make_job("j")])
    await backend.claim("w", None, 10, LEASE)
    retry_at = now() + 0.2
    await finish(backend, "j", "delayed", run_at=retry_at, error={"type": "E", "message": "e"})
    job = await backend.get_job("j")
    assert (job.state, job.worker, job.attempt) == ("delayed", None, 1)
    assert job.error == {"type": "E", "message": "e"}
    assert await claim_ids(backend) == []
    (again,) = await wait_until(lambda: backend.claim("w", None, 10, LEASE), timeout=5)
    assert again.attempt == 2
    await finish(backend, "j", "failed", error={"type": "E", "message": "final"})
    failed = await backend.get_job("j")
    assert failed.state == "failed" and failed.finished_at is not None
    await finish(backend, "j", "waiting", reset_attempts=True)
    job = await backend.get_job("j")
    assert (job.state, job.attempt, job.finished_at) == ("waiting", 0, None)
    (third,) = await backend.claim("w", None, 10, LEASE)
    assert third.attempt == 1


async def test_completed_job_keeps_its_result(backend, make_job):
    await backend.enqueue([make_job("j")])
    await backend.claim("w", None, 10, LEASE)
    await finish(backend, "j", result={"ok": [1, 2]})
    job = await backend.get_job("j")
    assert (job.state, job.result, job.worker, job.lease_until) == (
        "completed",
        {"ok": [1, 2]},
        None,
        None,
    )
    assert job.finished_at is not None
    assert await claim_ids(backend) == []


# -- queues, listing, deletion ---------------------------------------------------------------------


async def test_queue_counts(backend, make_job):
    await backend.enqueue(
        [make_job("a"), make_job("b"), make_job("c", run_at=now() + 60), make_job("x", queue="x")]
    )
    await claim_ids(backend, queues=["q"], limit=1)
    await claim_ids(backend, queues=["x"], limit=1)
    await finish(backend, "x", "failed", error={"type": "E", "message": "e"})
    counts = await backend.queue_counts()
    assert counts["q"] == {"active": 1, "waiting": 1, "delayed": 1}
    assert counts["x"] == {"failed": 1}


async def test_list_jobs_pages_newest_first(backend, make_job):
    for i in range(5):
        await backend.enqueue([make_job(f"j{i}")])
    await backend.enqueue([make_job("other", queue="other")])
    seen, cursor, pages = [], None, 0
    while True:
        page = await backend.list_jobs("q", limit=2, cursor=cursor)
        pages += 1
        assert len(page.items) <= 2
        seen += [j.id for j in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 10
    assert seen == ["j4", "j3", "j2", "j1", "j0"]
    assert pages == 3
    exact = await backend.list_jobs("q", limit=5)
    assert len(exact.items) == 5 and exact.next_cursor is None


async def test_list_jobs_filters_by_state(backend, make_job):
    for i in range(4):
        await backend.enqueue([make_job(f"j{i}")])
    await claim_ids(backend, limit=2)  # j0, j1 active
    active = await backend.list_jobs("q", state="active")
    assert [j.id for j in active.items] == ["j1", "j0"]
    first = await backend.list_jobs("q", state="waiting", limit=1)
    assert [j.id for j in first.items] == ["j3"]
    rest = await backend.list_jobs("q", state="waiting", limit=1, cursor=first.next_cursor)
    assert [j.id for j in rest.items] == ["j2"]
    assert (await backend.list_jobs("q", state="failed")).items == []
    assert (await backend.list_jobs("nope")).items == []


async def test_delete_job(backend, make_job):
    await backend.enqueue([make_job("a"), make_job("b")])
    await claim_ids(backend, limit=1)  # a is active
    with pytest.raises(ValueError):
        await backend.delete_job("a")
    assert (await backend.get_job("a")).state == "active"
    assert await backend.delete_job("b") is True
    assert await backend.get_job("b") is None
    assert await backend.delete_job("b") is False
    assert await backend.delete_job("never") is False
    assert await claim_ids(backend) == []
    await finish(backend, "a")
    assert await backend.delete_job("a") is True
    assert (
        "q" not in await backend.queue_counts()
        or sum((await backend.queue_counts())["q"].values()) == 0
    )


async def test_two_claimers_never_get_the_same_job(backend, peer, make_job):
    await backend.enqueue([make_job(f"j{i:02}") for i in range(40)])

    async def drain(b, worker):
        got = []
        while batch := await b.claim(worker, None, 3, LEASE):
            got += [j.id for j in batch]
        return got

    a, b = await asyncio.gather(drain(backend, "w1"), drain(peer, "w2"))
    assert not set(a) & set(b)
    assert sorted(a + b) == [f"j{i:02}" for i in range(40)]


# -- stale attempts --------------------------------------------------------------------------------


async def test_commit_guarded_by_attempt_skips_a_stale_attempt(backend, make_job):
    (job_id,) = await backend.enqueue([make_job()])
    (first,) = await backend.claim("w1", None, 1, lease=0.05)
    await asyncio.sleep(0.1)  # the lease of w1 expires
    (second,) = await backend.claim("w2", None, 1, lease=30)
    assert second.id == job_id and second.attempt == first.attempt + 1
    stale = JobUpdate(job_id, "failed", error={"message": "stale"})
    results = await backend.commit(
        [CommitItem(None, lambda _: Transition(jobs=[stale]), (job_id, first.attempt))]
    )
    assert results == [[]]
    job = await backend.get_job(job_id)
    assert job is not None and job.state == "active" and job.attempt == second.attempt
    current = JobUpdate(job_id, "failed", error={"message": "current"})
    await backend.commit(
        [CommitItem(None, lambda _: Transition(jobs=[current]), (job_id, second.attempt))]
    )
    job = await backend.get_job(job_id)
    assert job is not None and job.state == "failed" and job.error == {"message": "current"}
