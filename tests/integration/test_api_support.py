"""Shared helpers of the HTTP API tests (no tests here): an App with a worker and a client,
the test flows and functions, an in-process uvicorn server and a small SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from flowtide import App, Config, Context, Flow, function, triggers
from flowtide.engine.worker import Worker
from flowtide.registry import Registry
from flowtide.server import create_app

TERMINAL = ("completed", "failed", "canceled", "stalled")


class Order(BaseModel):
    id: int
    item: str = "book"


class Item(BaseModel):
    n: int


@dataclass
class Gates:
    """What the test handlers wait on or read, one per test."""

    hold: asyncio.Event = field(default_factory=asyncio.Event)
    block: asyncio.Event = field(default_factory=asyncio.Event)
    fail_once: set[int] = field(default_factory=set)

    def release_all(self) -> None:
        self.hold.set()
        self.block.set()


def build_registry(gates: Gates) -> Registry:
    orders = Flow("orders", description="accept and ship an order")

    @orders.entry(emits=["order.accepted"], triggers=[triggers.manual()])
    async def accept(order: Order, ctx: Context) -> dict[str, Any]:
        await ctx.state.set("order", order.model_dump())
        await ctx.emit("order.accepted", {"id": order.id})
        return {"accepted": order.id}

    @orders.step(subscribes=["order.accepted"])
    async def ship(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"shipped": event["id"]}

    gated = Flow("gated", description="waits until the test opens the gate")

    @gated.entry()
    async def hold(data: Any, ctx: Context) -> str:
        await gates.hold.wait()
        return "released"

    @function(queue="emails")
    async def flaky(item: Item, ctx: Context) -> int:
        if item.n in gates.fail_once:
            gates.fail_once.discard(item.n)
            raise RuntimeError(f"item {item.n} failed once")
        return item.n * 2

    @function(queue="slow")
    async def blocker(data: Any, ctx: Context) -> str:
        await gates.block.wait()
        return "done"

    @function(queue="idle")
    async def never_used(data: Any, ctx: Context) -> None:
        return None

    registry = Registry()
    for item in (orders, gated, flaky, blocker, never_used):
        registry.add(item)
    return registry


def make_config(backend: str, tmp_path: Path, token: str = "") -> Config:
    if backend.startswith("redis://"):
        url = backend  # a full URL (tests/_backend_redis.url)
    else:
        url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'flowtide.db'}"
    config = Config(backend=url, root=tmp_path)
    config.server.api_token = token
    config.worker.poll_interval = 0.01
    config.worker.lease = 5.0
    config.worker.shutdown_grace = 2.0
    return config


@dataclass
class Api:
    app: App
    api: FastAPI
    client: httpx.AsyncClient
    gates: Gates

    async def start(self, flow: str, input: Any) -> str:
        r = await self.client.post(f"/api/flows/{flow}/runs", json={"input": input})
        assert r.status_code == 201, r.text
        run_id: str = r.json()["run_id"]
        return run_id

    async def start_with_token(self, flow: str, input: Any, token: str) -> str:
        headers = {"Authorization": f"Bearer {token}"}
        r = await self.client.post(
            f"/api/flows/{flow}/runs", json={"input": input}, headers=headers
        )
        assert r.status_code == 201, r.text
        run_id: str = r.json()["run_id"]
        return run_id

    async def wait_run(self, run_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return await self.app.wait(run_id, timeout)

    async def wait_status(self, run_id: str, status: str, timeout: float = 10.0) -> None:
        await wait_for(self.app, lambda: _run_status(self.app, run_id, status), timeout)

    async def wait_job(self, job_id: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        async def check() -> bool:
            job = await self.app.backend.get_job(job_id)
            return job is not None and job.state == state

        await wait_for(self.app, check, timeout)
        r = await self.client.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body


async def _run_status(app: App, run_id: str, status: str) -> bool:
    record = await app.backend.get_run(run_id)
    return record is not None and record.status == status


async def wait_for(app: App, check: Any, timeout: float = 10.0) -> None:
    """Re-check ``check()`` on every backend change until it is true, for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"condition not met within {timeout}s")
        await app.backend.wait_for_change(min(left, 0.1))


@contextlib.asynccontextmanager
async def api_harness(
    backend: str, tmp_path: Path, *, token: str = "", **server_options: Any
) -> AsyncIterator[Api]:
    gates = Gates()
    app = App(make_config(backend, tmp_path, token), registry=build_registry(gates))
    await app.open()
    worker = Worker(app.service)
    task = asyncio.create_task(worker.run())
    api = create_app(app, **server_options)
    transport = httpx.ASGITransport(app=api)
    client = httpx.AsyncClient(transport=transport, base_url="http://flowtide.test")
    try:
        yield Api(app, api, client, gates)
    finally:
        await client.aclose()
        gates.release_all()
        worker.stop()
        await asyncio.wait_for(task, 10)
        await app.close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's signal handlers alone


@contextlib.asynccontextmanager
async def serve(api: FastAPI) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Run ``api`` on a real uvicorn server on a free port; yield its base URL."""
    config = uvicorn.Config(
        api,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            await task
            raise AssertionError("uvicorn did not start")
        assert time.monotonic() < deadline, "uvicorn did not start within 10s"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@dataclass
class Message:
    """One SSE message, or a comment line (``comment`` set, nothing else)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        import json

        assert self.data is not None
        return json.loads(self.data)


async def sse_messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Parse a ``text/event-stream`` body as it arrives."""
    current = Message()
    async for line in response.aiter_lines():
        if line == "":
            if current.data is not None or current.id is not None or current.event is not None:
                yield current
            current = Message()
        elif line.startswith(":"):
            yield Message(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            elif name == "data":
                current.data = value if current.data is None else f"{current.data}\n{value}"


def parse_sse(text: str) -> list[Message]:
    """Parse a complete ``text/event-stream`` body (messages only, no comments)."""
    out = []
    for block in text.split("\n\n"):
        msg = Message()
        for line in block.splitlines():
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                msg.id = value
            elif name == "event":
                msg.event = value
            elif name == "data":
                msg.data = value
        if msg.data is not None:
            out.append(msg)
    return out
