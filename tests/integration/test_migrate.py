"""``flowtide migrate`` (the engine side): SQLite -> PostgreSQL -> Redis -> SQLite leaves
every history, state, job, record and timer as it was; copying again copies nothing; a
checkpoint resumes an interrupted copy; verification finds a tampered copy; and a run that
was awaiting on the old backend finishes on the new one."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowtide.engine.migrate import (
    CHECKPOINTS,
    checkpoint_key,
    events_checksum,
    migrate,
    verify,
)
from flowtide.events import NewEvent
from tests import _backend_postgres, _backend_redis
from tests.integration._engine_harness import running_app
from tests.integration._migrate_data import definitions, opened, populate, snapshot


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A SQLite file filled by real flows (once for the module; tests copy it)."""
    path = tmp_path_factory.mktemp("migrate-source") / "source.db"
    facts = asyncio.run(populate(f"sqlite:///{path}"))
    yield path, facts


@pytest.fixture
def source_url(source_db: tuple[Path, dict[str, Any]], tmp_path: Path) -> str:
    path = tmp_path / "source.db"
    shutil.copy(source_db[0], path)
    return f"sqlite:///{path}"


@pytest.fixture
def facts(source_db: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return source_db[1]


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A PostgreSQL schema and a Redis prefix of this test's own, removed afterwards."""
    for reason in (_backend_postgres.skip(), _backend_redis.skip()):
        if reason:
            pytest.skip(reason)
    urls = {"postgres": _backend_postgres.url(tmp_path), "redis": _backend_redis.url(tmp_path)}
    yield urls
    await _backend_postgres.cleanup(urls["postgres"])
    await _backend_redis.cleanup(urls["redis"])


async def test_round_trip_keeps_everything_and_awaiting_runs_finish(
    source_url: str, facts: dict[str, Any], servers: dict[str, str], tmp_path: Path
) -> None:
    final_url = f"sqlite:///{tmp_path}/final.db"
    chain = [source_url, servers["postgres"], servers["redis"], final_url]
    async with opened(source_url) as source:
        original = await snapshot(source)
    runs = len(facts["done"]) + 2 + len(facts["fired"])
    assert len(original["runs"]) == runs == 7
    assert original["paused"] == {"mail"}
    assert {"triggers", "awaits", "await_tokens"} <= set(original["records"])
    assert any(t[2] == "schedule" for t in original["timers"])
    assert any(t[2] == "await" for t in original["timers"])
    assert original["jobs"][facts["noted"]][1] == {"noted": ({"text": "kept"}, None)}

    for here, there in itertools.pairwise(chain):
        async with opened(here) as a, opened(there) as b:
            report = await migrate(a, b, source_url=here)
            assert report.copied["runs"] == runs and report.present["runs"] == 0
            assert report.copied["events"] == sum(
                len(r["events"]) for r in original["runs"].values()
            )
            assert report.copied["jobs"] == len(original["jobs"])
            again = await migrate(a, b, source_url=here)
            assert sum(again.copied.values()) == 0, again.to_json()
            assert again.resumed and again.present["jobs"] > 0
            checked = await verify(a, b)
            assert checked.ok, checked.to_json()
            assert checked.runs_checked == runs
            copy = await snapshot(b)
        assert copy["runs"].keys() == original["runs"].keys()
        for run_id, run in original["runs"].items():
            assert copy["runs"][run_id]["events"] == run["events"], (there, run_id)
            assert copy["runs"][run_id]["state"] == run["state"], (there, run_id)
            assert copy["runs"][run_id]["record"] == run["record"], (there, run_id)
        assert copy["jobs"] == original["jobs"], there
        assert copy["records"] == original["records"], there
        assert copy["timers"] == original["timers"], there
        assert copy["paused"] == original["paused"]
        assert copy["counts"] == original["counts"]

    # the run awaiting approval goes on, on the last backend; the paused queue's mail is sent
    async with running_app(final_url, *definitions(), scheduler=True) as (app, _):
        assert (await app.run(facts["awaiting"]))["status"] == "awaiting"
        await app.resolve(facts["await_id"], {"approved": True})
        view = await app.wait(facts["awaiting"], timeout=20)
        assert view["status"] == "completed"
        assert view["result"] == {"order": {"id": 7}, "approval": {"approved": True}}
        await app.backend.set_paused("mail", False)

        async def sent() -> bool:
            job = await app.backend.get_job(facts["waiting"])
            return job is not None and job.state == "completed"

        for _ in range(500):
            if await sent():
                break
            await asyncio.sleep(0.02)
        assert await sent()
        assert (await app.backend.get_job(facts["delayed"])).state == "delayed"
        events = await app.backend.read_events(facts["awaiting"])
    old = original["runs"][facts["awaiting"]]["events"]
    assert events[: len(old)] == old
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "flow.completed"


async def test_dry_run_writes_nothing(source_url: str, servers: dict[str, str]) -> None:
    async with opened(source_url) as source, opened(servers["redis"]) as target:
        planned = await migrate(source, target, source_url=source_url, dry_run=True)
        assert (await target.list_runs()).items == []
        assert await target.record_collections() == []
        assert await target.list_timers() == [] and await target.queue_counts() == {}
        done = await migrate(source, target, source_url=source_url)
        assert planned.copied == done.copied and planned.dry_run and not done.dry_run
        after = await migrate(source, target, source_url=source_url, dry_run=True)
        assert sum(after.copied.values()) == 0
        assert after.present["runs"] == 0  # the checkpoint says every run is there already


class Interrupted(Exception):
    pass


class _StopAfter:
    """A progress callback that interrupts the copy after ``n`` runs."""

    def __init__(self, n: int) -> None:
        self.n = n

    def begin(self, phase: str, total: int) -> None:
        return None

    def advance(self, phase: str, amount: int = 1) -> None:
        if phase == "runs":
            self.n -= amount
            if self.n <= 0:
                raise Interrupted


async def test_an_interrupted_copy_resumes_from_its_checkpoint(
    source_url: str, tmp_path: Path
) -> None:
    target_url = f"sqlite:///{tmp_path}/target.db"
    async with opened(source_url) as source, opened(target_url) as target:
        with pytest.raises(Interrupted):
            await migrate(source, target, source_url=source_url, page=2, progress=_StopAfter(5))
        checkpoint = await target.get_record(CHECKPOINTS, checkpoint_key(source_url))
        assert checkpoint is not None and checkpoint["done"] is False
        assert "source.db" in checkpoint["source"]
        copied_before = len((await target.list_runs(limit=100)).items)
        assert 4 <= copied_before < 7

        resumed = await migrate(source, target, source_url=source_url, page=2)
        assert resumed.resumed
        assert copied_before + resumed.copied["runs"] == 7
        assert resumed.present["runs"] <= 2  # at most the interrupted page is looked at again
        assert (await verify(source, target)).ok

        # a run the source got after the copy is copied by the next migration, alone
        async with running_app(source_url, *definitions()) as (app, _):
            late = await app.start("orders", {"id": 1000})
            assert (await app.wait(late, timeout=20))["status"] == "completed"
        later = await migrate(source, target, source_url=source_url, page=2)
        assert later.copied["runs"] == 1 and later.present["runs"] == 0
        assert await target.read_events(late) == await source.read_events(late)


async def test_verify_finds_a_tampered_copy(
    source_url: str, facts: dict[str, Any], tmp_path: Path
) -> None:
    target_url = f"sqlite:///{tmp_path}/target.db"
    async with opened(source_url) as source, opened(target_url) as target:
        await migrate(source, target, source_url=source_url)
        assert (await verify(source, target)).ok
        victim = facts["done"][0]
        before = events_checksum(await target.read_events(victim))
        await target.append_events(victim, [NewEvent("log", {"message": "tampered"})])
        await target.put_record("triggers", "extra", {"name": "extra"})
        report = await verify(source, target)
        assert not report.ok
        assert [d["run_id"] for d in report.differences] == [victim]
        diff = report.differences[0]
        assert diff["problem"] == "events differ" and diff["source"] == before
        wrong = {kind for kind, mine, theirs in report.counts if mine != theirs}
        assert wrong == {"events", "records triggers"}
