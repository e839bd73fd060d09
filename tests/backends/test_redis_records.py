"""Redis records: expired records are removed from every key that indexes them (by the record
operations and by the sweep), listing pages through many records, and record writes ride on
the commit script (with ``commit_and_claim`` too, and not when a version check fails)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import create_backend
from flowtide.backends.base import CommitItem, Job, JobUpdate, RecordOp, Transition
from flowtide.backends.redis import RedisBackend
from flowtide.backends.redis._codec import encode_record
from flowtide.events import NewEvent, RunRecord
from tests import _backend_redis


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[RedisBackend]:
    reason = _backend_redis.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_redis.url(tmp_path)
    b = create_backend(url)
    assert isinstance(b, RedisBackend)
    await b.open()
    try:
        yield b
    finally:
        await b.close()
        await _backend_redis.cleanup(url)


async def _keys(backend: RedisBackend) -> set[str]:
    prefix = backend.options.prefix
    return {k[len(prefix) :] async for k in backend.client.scan_iter(match=prefix + "rec*")}


async def test_expired_records_are_removed_from_every_key(backend: RedisBackend) -> None:
    ts = now()
    for i in range(150):  # more than one operation removes
        await backend.put_record("idem", f"k{i:03}", {"i": i}, expires_at=ts + 0.05)
    await backend.put_record("idem", "live", 1, expires_at=ts + 60)
    while now() < ts + 0.06:
        await backend.client.ping()
    # the listing skips (and removes) expired records beyond what the purge removed
    assert await backend.list_records("idem") == [("live", 1)]
    assert await backend.client.hlen(backend.keys.prefix + "rec:idem") == 1
    assert await backend.client.zcard(backend.keys.prefix + "recx:idem") == 1
    assert await backend.client.zcard(backend.keys.prefix + "rece:idem") == 1
    assert await backend.delete_record("idem", "live") is True
    assert await _keys(backend) == set()
    assert await backend.record_collections() == []


async def test_the_sweep_removes_expired_records_of_untouched_collections(
    backend: RedisBackend,
) -> None:
    ts = now()
    await backend.put_record("rate:gone", "w", 3, expires_at=ts + 0.02)
    await backend.put_record("rate:kept", "w", 3)
    while now() < ts + 0.03:
        await backend.client.ping()
    backend._next_sweep = 0.0
    await backend.client.delete(backend.keys.sweep)
    await backend.claim("w", None, 1, 30)  # runs the sweep (no retention configured)
    assert await _keys(backend) == {"rec:rate:kept", "recx:rate:kept", "reccols"}
    assert await backend.record_collections() == ["rate:kept"]


async def test_listing_pages_through_many_records(backend: RedisBackend) -> None:
    keys = [f"{i:05}" for i in range(2500)]
    ops = [RecordOp("fires", k, {"k": k}) for k in keys]
    await backend.commit([CommitItem(None, lambda _: Transition(records=ops))])
    listed = await backend.list_records("fires", limit=10_000)
    assert [k for k, _ in listed] == keys
    assert [k for k, _ in await backend.list_records("fires", 3, "01000", True)] == [
        "00999",
        "00998",
        "00997",
    ]
    # keys order by code point, as in Python
    for key in ["é", "z", "Z", "日本", ""]:
        await backend.put_record("u", key, key)
    assert [k for k, _ in await backend.list_records("u")] == sorted(["é", "z", "Z", "日本", ""])
    assert [k for k, _ in await backend.list_records("u", after="")] == sorted(
        ["é", "z", "Z", "日本"]
    )


async def test_counters_keep_their_expiry_and_stay_exact(backend: RedisBackend) -> None:
    ts = now()
    assert await backend.add_to_counter("c", "n", 2**60, expires_at=ts + 60) == 2**60
    assert await backend.add_to_counter("c", "n", 1, expires_at=ts + 1000) == 2**60 + 1
    assert await backend.get_record("c", "n") == 2**60 + 1
    score = await backend.client.zscore(backend.keys.prefix + "rece:c", "n")
    assert score == pytest.approx(ts + 60)
    assert await backend.add_to_counter("c", "n", -(2**60)) == 1


async def test_records_ride_on_commit_and_claim_and_not_on_a_conflict(
    backend: RedisBackend,
) -> None:
    run_id = uuid7()
    ts = now()
    record = RunRecord(run_id, "f", "running", None, ts, ts, version=1)
    job = Job(f"{run_id}:a", "q", "a", run_id=run_id, flow="f")
    start = Transition(run=record, events=[NewEvent("flow.started")], enqueue=[job])
    await backend.commit([CommitItem(run_id, lambda _: start)])
    (claimed,) = await backend.claim("w", None, 10, 30)
    seen: list[int] = []

    def finish(stored: RunRecord | None) -> Transition:
        assert stored is not None
        seen.append(stored.version)
        return Transition(
            run=dataclasses.replace(stored, version=stored.version + 1),
            jobs=[JobUpdate(claimed.id, "completed")],
            records=[RecordOp("awaits", "a1", {"v": stored.version})],
        )

    # another process moves the run on: the first decision conflicts and is decided again
    await backend.client.hset(backend.keys.run(run_id), "v", "2")
    await backend.client.hset(
        backend.keys.run(run_id),
        "rec",
        encode_record(dataclasses.replace(record, version=2)),
    )
    backend._forget(run_id)
    backend._remember(run_id, 1, encode_record(record))  # a stale hint
    await backend.commit_and_claim(
        [CommitItem(run_id, finish, attempt_of=(claimed.id, claimed.attempt))], "w", None, 5, 30
    )
    assert seen == [1, 2]
    assert await backend.get_record("awaits", "a1") == {"v": 2}
    assert (await backend.get_run(run_id)).version == 3  # type: ignore[union-attr]
