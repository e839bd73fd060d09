"""The real ``flowtide migrate`` command in child processes: --dry-run, copying, --verify
(exit 1 after the copy was tampered with), --json, and one-line errors."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowtide.events import NewEvent
from tests import _backend_postgres, _backend_redis
from tests.integration._migrate_data import opened, populate
from tests.integration.test_cli_support import flowtide


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("migrate-cli") / "source.db"
    facts = asyncio.run(populate(f"sqlite:///{path}"))
    yield path, facts


@pytest.fixture
def workdir(filled: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A directory without any flowtide config or app, holding a copy of the source."""
    shutil.copy(filled[0], tmp_path / "source.db")
    return tmp_path


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    reason = _backend_postgres.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_postgres.url(tmp_path)
    yield url
    asyncio.run(_backend_postgres.cleanup(url))


def test_dry_run_then_copy_then_verify(
    workdir: Path, filled: tuple[Path, dict[str, Any]], pg_url: str
) -> None:
    facts = filled[1]
    source = "sqlite:///source.db"  # relative: resolved in the working directory

    planned = flowtide(workdir, "migrate", "--from", source, "--to", pg_url, "--dry-run", "--json")
    assert planned.code == 0, planned.err
    plan = planned.json()
    assert plan["migration"]["dry_run"] is True and plan["verify"] is None
    assert plan["migration"]["copied"]["runs"] == 7
    assert plan["migration"]["copied"]["jobs"] > 0 and plan["migration"]["copied"]["records"] > 0

    async def runs_there() -> int:
        async with opened(pg_url) as target:
            return len((await target.list_runs()).items)

    assert asyncio.run(runs_there()) == 0  # the dry run wrote nothing

    human = flowtide(workdir, "migrate", "--from", source, "--to", pg_url, "--verify")
    assert human.code == 0, human.err
    assert "copied" in human.out and "verified: counts match, 7 runs identical" in human.out
    assert "DIFFERS" not in human.out
    assert asyncio.run(runs_there()) == 7

    again = flowtide(workdir, "migrate", "--from", source, "--to", pg_url, "--verify", "--json")
    assert again.code == 0, again.err
    doc = again.json()
    assert sum(doc["migration"]["copied"].values()) == 0
    assert doc["migration"]["resumed"] is True
    assert doc["verify"]["ok"] is True and doc["verify"]["runs_checked"] == 7

    async def tamper() -> None:
        async with opened(pg_url) as target:
            await target.append_events(facts["failed"], [NewEvent("log", {"message": "x"})])

    asyncio.run(tamper())
    checked = flowtide(
        workdir, "migrate", "--from", source, "--to", pg_url, "--verify", "--dry-run", "--json"
    )
    assert checked.code == 1
    assert "verification failed" in checked.error_line
    report = checked.json()["verify"]
    assert report["ok"] is False
    assert report["differences"] == [
        {
            "run_id": facts["failed"],
            "problem": "events differ",
            "source": report["differences"][0]["source"],
            "target": report["differences"][0]["target"],
        }
    ]
    shown = flowtide(workdir, "migrate", "--from", source, "--to", pg_url, "--verify")
    assert shown.code == 1
    assert f"run {facts['failed']}: events differ" in shown.out and "DIFFERS" in shown.out


def test_errors_are_one_line(workdir: Path) -> None:
    same = flowtide(workdir, "migrate", "--from", "sqlite:///source.db", "--to",
                    f"sqlite:///{workdir}/source.db")  # fmt: skip
    assert same.code == 2 and "the same backend" in same.error_line

    missing = flowtide(workdir, "migrate", "--from", "sqlite:///nope.db", "--to",
                       "sqlite:///out.db")  # fmt: skip
    assert missing.code == 5 and "no such database file" in missing.error_line
    assert not (workdir / "nope.db").exists()

    bad = flowtide(workdir, "migrate", "--from", "sqlite:///source.db", "--to", "nosuch://x")
    assert bad.code == 3 and "--to" in bad.error_line and "unknown scheme" in bad.error_line

    memory = flowtide(workdir, "migrate", "--from", "sqlite:///source.db", "--to", "memory://")
    assert memory.code == 2 and "memory://" in memory.error_line

    if _backend_redis.skip() is None:
        down = flowtide(
            workdir,
            "migrate",
            "--from",
            "sqlite:///source.db",
            "--to",
            "redis://127.0.0.1:1/0?connect_timeout=1",
        )
        assert down.code == 5 and "backend unavailable (--to)" in down.error_line

    usage = flowtide(workdir, "migrate", "--to", "sqlite:///out.db")
    assert usage.code == 2 and "--from" in usage.err
