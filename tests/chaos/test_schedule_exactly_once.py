"""Three processes share a backend and run a per-second schedule for 20 seconds: every
occurrence fires exactly once, none is skipped (DESIGN A10 item 3)."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flowtide import App, load_config
from tests._backends import FACTORIES, BackendFactory
from tests._processes import flowtide_processes, write_app

SHARED = [f for f in FACTORIES if f.shared_url]
SECONDS = 20

APP = textwrap.dedent(
    """
    from flowtide import Context, Flow, triggers

    ticker = Flow("ticker")


    @ticker.entry(triggers=[triggers.schedule("* * * * * *", tz="Europe/Berlin")])
    async def tick(data, ctx: Context) -> str:
        return data["scheduled_at"]
    """
)


@pytest.fixture(params=SHARED, ids=[f.name for f in SHARED])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    factory: BackendFactory = request.param
    reason = factory.skip()
    if reason:
        pytest.skip(reason)
    (tmp_path / "db").mkdir()
    url = factory.url(tmp_path / "db")
    yield url
    await factory.cleanup(url)


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
async def test_each_occurrence_fires_once_across_three_processes(
    shared_url: str, tmp_path: Path, wait_until: Any
) -> None:
    write_app(tmp_path, APP, shared_url, ["[worker]", "concurrency = 4"])
    config = load_config(root=tmp_path, path=tmp_path / "flowtide.toml")
    with flowtide_processes(tmp_path) as procs:
        workers = [procs.start("worker", name=f"worker{i}") for i in range(3)]
        for proc in workers:
            proc.wait_for_output("ready", timeout=30)
        async with App(config) as app:

            async def enough() -> bool:
                fires, _ = await app.trigger_service.fires("ticker.schedule", limit=500)
                return len(fires) >= SECONDS

            await wait_until(enough, timeout=SECONDS + 15, what=f"{SECONDS} occurrences")
            for proc in workers:
                assert proc.stop() == 0, proc.output()
            fires = await app.trigger_service.fires("ticker.schedule", limit=500)
            runs = await app.backend.list_runs(flow="ticker", limit=500)
    slots = sorted(_ts(f["scheduled_at"]) for f in fires[0])
    assert len(slots) >= SECONDS - 3, f"only {len(slots)} occurrences fired"
    assert len(set(slots)) == len(slots), "an occurrence fired twice"
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(abs(gap - 1.0) < 0.01 for gap in gaps), f"skipped occurrences: {gaps}"
    assert sum(len(f["run_ids"]) for f in fires[0]) == len(runs.items) == len(slots)
