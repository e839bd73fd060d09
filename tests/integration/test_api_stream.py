"""Server-Sent Events over a real uvicorn server: live run streams, the lifecycle feed, resume
with Last-Event-ID, keep-alives, disconnects and shutdown. Memory and SQLite backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from test_api_support import Api, Message, api_harness, serve, sse_messages

from flowtide.server import close_streams

TIMEOUT = 10.0


@pytest.fixture(params=["memory", "sqlite"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with api_harness(request.param, tmp_path, keepalive=0.3, stats_interval=0.05) as h:
        yield h


@pytest.fixture
async def server(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, uvicorn.Server]]:
    async with (
        serve(api.api) as (url, srv),
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client,
    ):
        yield client, srv


async def take_until(
    messages: AsyncIterator[Message], stop: Any, *, comments: bool = False
) -> list[Message]:
    """Collect messages until ``stop(message)`` is true (inclusive), within TIMEOUT."""
    out: list[Message] = []
    async with asyncio.timeout(TIMEOUT):
        async for msg in messages:
            if msg.comment is not None and not comments:
                continue
            out.append(msg)
            if stop(msg):
                return out
    raise AssertionError(f"the stream ended before the expected message: {out}")


async def rest(messages: AsyncIterator[Message]) -> list[Message]:
    """Everything until the server ends the stream, within TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        return [m async for m in messages if m.comment is None]


async def test_run_stream_history_then_live_then_closes(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    run_id = await api.start("gated", {"x": 1})
    async with client.stream("GET", f"/api/runs/{run_id}/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        messages = sse_messages(response)
        first = await take_until(messages, lambda m: m.event == "step.started")
        assert [m.event for m in first] == ["flow.started", "step.started"]
        assert [m.id for m in first] == ["1", "2"]
        assert first[0].json()["run_id"] == run_id

        api.gates.hold.set()  # the step can finish now: these events arrive live
        live = await rest(messages)  # the server closes the stream after the terminal event
    assert [m.event for m in live] == ["step.completed", "flow.completed"]
    assert [m.id for m in live] == ["3", "4"]
    assert live[-1].json()["data"]["result"] == "released"


async def test_run_stream_resumes_from_last_event_id(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    run_id = await api.start("gated", None)
    async with client.stream("GET", f"/api/runs/{run_id}/stream") as response:
        got = await take_until(sse_messages(response), lambda m: m.id == "2")
    assert [m.id for m in got] == ["1", "2"]

    api.gates.hold.set()
    await api.wait_run(run_id)
    headers = {"Last-Event-ID": got[-1].id or ""}
    async with client.stream("GET", f"/api/runs/{run_id}/stream", headers=headers) as response:
        resumed = await rest(sse_messages(response))
    assert [m.id for m in resumed] == ["3", "4"]
    assert resumed[-1].event == "flow.completed"

    headers = {"Last-Event-ID": "4"}  # already has the terminal event: nothing more to send
    async with client.stream("GET", f"/api/runs/{run_id}/stream", headers=headers) as response:
        assert await rest(sse_messages(response)) == []


async def test_run_stream_keepalive_while_idle(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    run_id = await api.start("gated", None)
    await api.wait_status(run_id, "running")
    async with client.stream("GET", f"/api/runs/{run_id}/stream") as response:
        messages = sse_messages(response)
        got = await take_until(messages, lambda m: m.comment is not None, comments=True)
    assert got[-1].comment == "keep-alive"
    assert [m.event for m in got[:-1]] == ["flow.started", "step.started"]


async def test_stream_stops_when_the_client_disconnects(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, srv = server
    run_id = await api.start("gated", None)
    for path in (f"/api/runs/{run_id}/stream", "/api/events/stream"):
        async with client.stream("GET", path) as response:
            await take_until(sse_messages(response), lambda m: True)
            assert srv.server_state.tasks  # the stream is being served
        # the client closed the connection: the server's task for it ends
        async with asyncio.timeout(TIMEOUT):
            while srv.server_state.tasks:
                await asyncio.sleep(0.01)


async def test_close_streams_ends_open_streams(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    run_id = await api.start("gated", None)
    async with (
        client.stream("GET", f"/api/runs/{run_id}/stream") as run_stream,
        client.stream("GET", "/api/events/stream") as feed,
    ):
        run_messages, feed_messages = sse_messages(run_stream), sse_messages(feed)
        await take_until(run_messages, lambda m: m.event == "step.started")
        await take_until(feed_messages, lambda m: m.event == "stats")
        close_streams(api.api)
        await rest(run_messages)  # both end (within TIMEOUT) without the run having ended
        await rest(feed_messages)


async def test_events_stream_starts_at_the_end_and_resumes(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    old = await api.start("orders", {"id": 1})
    await api.wait_run(old)

    async with client.stream("GET", "/api/events/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(response)
        stats = await take_until(messages, lambda m: m.event == "stats")
        assert len(stats) == 1  # no history without Last-Event-ID: the old run is not replayed
        queues = {q["name"]: q for q in stats[0].json()["queues"]}
        assert queues["orders"]["counts"]["completed"] == 2

        run_id = await api.start("orders", {"id": 2})

        def is_end(m: Message) -> bool:
            return m.event == "flow.completed" and m.json()["run_id"] == run_id

        live = [m for m in await take_until(messages, is_end) if m.event != "stats"]
    assert {m.json()["run_id"] for m in live} == {run_id}
    assert [m.event for m in live] == [
        "flow.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "flow.completed",
    ]
    ids = [int(m.id or 0) for m in live]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    headers = {"Last-Event-ID": str(ids[2])}
    async with client.stream("GET", "/api/events/stream", headers=headers) as response:
        resumed = await take_until(sse_messages(response), lambda m: m.id == str(ids[-1]))
    assert [int(m.id or 0) for m in resumed if m.event != "stats"] == ids[3:]

    async with client.stream("GET", "/api/events/stream", params={"after": 0}) as response:
        replay = await take_until(sse_messages(response), lambda m: m.id == str(ids[-1]))
    assert {m.json()["run_id"] for m in replay if m.event != "stats"} == {old, run_id}


async def test_events_stream_sends_stats_when_they_change(
    api: Api, server: tuple[httpx.AsyncClient, uvicorn.Server]
) -> None:
    client, _ = server
    await client.post("/api/queues/emails/pause")
    async with client.stream("GET", "/api/events/stream") as response:
        messages = sse_messages(response)
        first = (await take_until(messages, lambda m: m.event == "stats"))[-1]
        emails = next(q for q in first.json()["queues"] if q["name"] == "emails")
        assert emails["paused"] is True and emails["counts"]["waiting"] == 0

        r = await client.post("/api/jobs", json={"function": "flaky", "input": {"n": 1}})
        assert r.status_code == 201

        def waiting(m: Message) -> bool:
            if m.event != "stats":
                return False
            queue = next(q for q in m.json()["queues"] if q["name"] == "emails")
            return bool(queue["counts"]["waiting"] == 1)

        await take_until(messages, waiting)


async def test_streams_need_the_token(tmp_path: Path) -> None:
    async with (
        api_harness("memory", tmp_path, token="t0ken") as api,
        serve(api.api) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client,
    ):
        run_id = await api.start_with_token("orders", {"id": 1}, "t0ken")
        for path in (f"/api/runs/{run_id}/stream", "/api/events/stream"):
            r = await client.get(path)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "unauthorized"
        await api.wait_run(run_id)
        auth = {"Authorization": "Bearer t0ken"}
        async with client.stream("GET", f"/api/runs/{run_id}/stream", headers=auth) as response:
            assert response.status_code == 200
            assert (await rest(sse_messages(response)))[-1].event == "flow.completed"
