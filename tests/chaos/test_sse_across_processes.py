"""With real processes, on every backend processes can share: a `serve` process streams (SSE)
what a separate `worker` process commits (SQLite: data_version polling; Redis: pub/sub;
PostgreSQL: LISTEN/NOTIFY)."""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._backends import FACTORIES, BackendFactory
from tests._processes import flowtide_processes, write_app

SHARED = [f for f in FACTORIES if f.shared_url]

APP = textwrap.dedent(
    """
    from flowtide import Context, Flow

    pair = Flow("pair")


    @pair.entry(emits=["half"])
    async def first(n: int, ctx: Context) -> int:
        await ctx.emit("half", n)
        return n


    @pair.step(subscribes=["half"])
    async def second(n: int, ctx: Context) -> int:
        return n * 2
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


async def messages(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in current:
                yield current
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")


async def test_streams_follow_another_process_commits(tmp_path: Path, shared_url: str) -> None:
    write_app(tmp_path, APP, shared_url)
    with flowtide_processes(tmp_path) as procs:
        server = procs.start("serve", "--port", "0", name="serve")
        worker = procs.start("worker", name="worker")
        server.wait_for_output("http://", timeout=30)
        worker.wait_for_output("ready", timeout=30)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
        assert match, server.output()
        base = f"http://127.0.0.1:{match.group(1)}"
        async with (
            httpx.AsyncClient(base_url=base, timeout=20) as client,
            client.stream("GET", "/api/events/stream") as feed,
        ):
            assert feed.status_code == 200
            started = time.monotonic()
            r = await client.post("/api/flows/pair/runs", json={"input": 21})
            assert r.status_code == 201, r.text
            run_id = r.json()["run_id"]
            seen: list[tuple[int, str, str | None]] = []
            async for msg in messages(feed):
                if msg.get("event") == "stats":
                    continue
                event = json.loads(msg["data"])
                if event["run_id"] == run_id:
                    seen.append((int(msg["id"]), event["type"], event.get("step")))
                if event["type"] == "flow.completed" and event["run_id"] == run_id:
                    break
                assert time.monotonic() - started < 15, seen
            async with client.stream("GET", f"/api/runs/{run_id}/stream") as history:
                replay = [json.loads(m["data"])["type"] async for m in messages(history)]
    assert [t for _, t, _ in seen] == [
        "flow.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "flow.completed",
    ]
    ids = [i for i, _, _ in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert replay[0] == "flow.started" and replay[-1] == "flow.completed"
    assert replay.count("emit") == 1
