"""An App whose flows subscribe to triggers and await approvals, with a worker and an HTTP
client on the ASGI app: shared by the trigger, webhook and await API tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from flowtide import App, Config, Context, Flow, awaits, triggers
from flowtide.engine.worker import Worker
from flowtide.registry import Registry
from flowtide.server import create_app
from tests._backends import FACTORIES

BACKENDS = ["memory", "sqlite"]  # any name in tests/_backends.FACTORIES works

# Environment variables holding the webhook secrets (tests set them with monkeypatch).
SECRETS = {
    "stripe": "FT_TEST_STRIPE_SECRET",
    "github": "FT_TEST_GITHUB_SECRET",
    "standard_webhooks": "FT_TEST_STDWH_SECRET",
    "slack": "FT_TEST_SLACK_SECRET",
    "hmac": "FT_TEST_HMAC_SECRET",
    "secret_header": "FT_TEST_HEADER_SECRET",
}


class OrderIn(BaseModel):
    id: int
    item: str = "book"


class Approval(BaseModel):
    approved: bool


def build_registry() -> Registry:
    orders = Flow("orders", description="takes orders from a webhook, by hand or an event")

    @orders.entry(
        triggers=[
            triggers.webhook("orders-in", schema=OrderIn),
            triggers.manual(schema=OrderIn),
            triggers.event("order.placed"),
        ]
    )
    async def accept(order: OrderIn, ctx: Context) -> dict[str, Any]:
        return {"accepted": order.id}

    audit = Flow("audit", description="subscribed by hand only")

    @audit.entry(triggers=[triggers.webhook("orders-in", mode="manual")])
    async def record(data: Any, ctx: Context) -> Any:
        return data

    signed = Flow("signed", description="one flow behind every authenticated webhook")

    @signed.entry(
        triggers=[
            triggers.webhook("stripe-in", auth=triggers.stripe(SECRETS["stripe"])),
            triggers.webhook("github-in", auth=triggers.github(SECRETS["github"])),
            triggers.webhook(
                "stdwh-in", auth=triggers.standard_webhooks(SECRETS["standard_webhooks"])
            ),
            triggers.webhook("slack-in", auth=triggers.slack(SECRETS["slack"])),
            triggers.webhook(
                "hmac-in",
                auth=triggers.hmac(SECRETS["hmac"], header="X-Sig", prefix="sha256="),
                idempotency="header:X-Delivery",
            ),
            triggers.webhook(
                "hmac64-in",
                auth=triggers.hmac(
                    SECRETS["hmac"], header="X-Sig", algorithm="sha512", encoding="base64"
                ),
            ),
            triggers.webhook(
                "header-in", auth=triggers.secret_header("X-Token", SECRETS["secret_header"])
            ),
            triggers.webhook("unset-in", auth=triggers.github("FT_TEST_NEVER_SET_SECRET")),
            triggers.webhook("limited", rate_limit="3/hour"),
            triggers.webhook("idem-header", idempotency="header:X-Delivery"),
            triggers.webhook("idem-body", idempotency="body:event.id"),
            triggers.webhook("get-in", method="GET"),
            triggers.webhook("raw-in"),
        ]
    )
    async def receive(data: Any, ctx: Context) -> Any:
        return data

    nightly = Flow("nightly", description="a schedule")

    @nightly.entry(triggers=[triggers.schedule("0 3 * * *", tz="Europe/Berlin")])
    async def sweep(data: Any, ctx: Context) -> Any:
        return data

    approve = Flow("approve", description="waits for a webhook approval before shipping")

    @approve.entry(emits=["requested"])
    async def request(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await ctx.emit("requested", order)
        return order

    @approve.step(
        subscribes=["requested"], await_before=awaits.webhook(schema=Approval, timeout="1h")
    )
    async def ship(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"order": order, "approval": ctx.awaited}

    poll = Flow("poll", description="an await resolved by a GET")

    @poll.entry(await_before=awaits.webhook(method="GET"))
    async def go(data: Any, ctx: Context) -> Any:
        return ctx.awaited

    registry = Registry()
    for flow in (orders, audit, signed, nightly, approve, poll):
        registry.add(flow)
    return registry


def make_config(backend: str, tmp_path: Path, token: str = "") -> Config:
    """``backend``: the name of a factory in tests/_backends (memory, sqlite, redis, ...)."""
    factory = next(f for f in FACTORIES if f.name == backend)
    reason = factory.skip()
    if reason:
        pytest.skip(reason)
    config = Config(backend=factory.url(tmp_path), root=tmp_path)
    config.server.api_token = token
    config.server.base_url = "http://hooks.test"
    config.worker.poll_interval = 0.01
    config.worker.lease = 5.0
    config.worker.shutdown_grace = 2.0
    return config


@dataclass
class Harness:
    app: App
    client: httpx.AsyncClient

    async def wait_for(self, check: Any, timeout: float = 10.0, what: str = "") -> Any:
        """Re-check ``check()`` on every backend change until it is truthy (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"condition not met within {timeout}s: {what}")
            await self.app.backend.wait_for_change(min(left, 0.05))

    async def fires(self, trigger: str) -> list[dict[str, Any]]:
        items, _ = await self.app.trigger_service.fires(trigger, 500)
        return items

    async def runs_of(self, flow: str) -> list[Any]:
        page = await self.app.backend.list_runs(flow=flow, limit=500)
        return list(page.items)

    async def pending_await(self, run_id: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            r = await self.client.get("/api/awaits", params={"status": "pending"})
            assert r.status_code == 200, r.text
            mine = [a for a in r.json()["items"] if a["run_id"] == run_id]
            return mine[0] if mine else None

        result: dict[str, Any] = await self.wait_for(found, what=f"an await of run {run_id}")
        return result


@contextlib.asynccontextmanager
async def harness(backend: str, tmp_path: Path, *, token: str = "") -> AsyncIterator[Harness]:
    app = App(make_config(backend, tmp_path, token), registry=build_registry())
    await app.open()
    worker = Worker(app.service)
    task = asyncio.create_task(worker.run())
    transport = httpx.ASGITransport(app=create_app(app))
    client = httpx.AsyncClient(transport=transport, base_url="http://flowtide.test")
    try:
        yield Harness(app, client)
    finally:
        await client.aclose()
        worker.stop()
        await asyncio.wait_for(task, 10)
        await app.close()
        factory = next(f for f in FACTORIES if f.name == backend)
        await factory.cleanup(app.config.backend)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
