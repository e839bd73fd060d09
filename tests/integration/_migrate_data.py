"""A backend filled by real flows for the migration tests, and a snapshot of everything a
backend holds (to compare two of them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from flowtide import Backoff, Context, Flow, awaits, function, triggers
from flowtide.backends import Backend, create_backend
from flowtide.definitions import FunctionDef
from flowtide.engine.migrate import CHECKPOINTS
from tests.conftest import _wait_until
from tests.integration._engine_harness import running_app


def definitions() -> list[Flow | FunctionDef]:
    orders = Flow("orders", description="state, logs, emits, a second step")

    @orders.entry(
        emits=["order.accepted"],
        triggers=[triggers.event("user.signed_up"), triggers.schedule(every="1h")],
    )
    async def accept(order: Any, ctx: Context) -> dict[str, Any]:
        order = order or {}
        await ctx.state.set("order", order)
        await ctx.state.set("session", {"n": 1}, ttl="1h")
        ctx.log.info("accepted", order_id=order.get("id"))
        await ctx.emit("order.accepted", {"id": order.get("id"), "price": 12.5})
        return {"accepted": True}

    @orders.step(subscribes=["order.accepted"])
    async def ship(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"shipped": event["id"], "price": event["price"]}

    broken = Flow("broken")

    @broken.entry(retries=1, backoff=Backoff.fixed("10ms"))
    async def explode(data: Any, ctx: Context) -> None:
        raise RuntimeError(f"boom {ctx.attempt}")

    approve = Flow("approve")

    @approve.entry(emits=["requested"])
    async def request(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await ctx.state.set("asked", True)
        await ctx.emit("requested", order)
        return order

    @approve.step(subscribes=["requested"], await_before=awaits.webhook(timeout="2h"))
    async def deliver(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"order": order, "approval": ctx.awaited}

    @function(queue="mail")
    async def send(mail: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await ctx.state.set("sent_to", mail["to"])
        return {"sent": mail["to"]}

    @function(queue="flaky")
    async def flaky(data: Any, ctx: Context) -> None:
        await ctx.state.set("tried", True)
        raise ValueError("nope")

    @function(queue="notes")
    async def note(data: Any, ctx: Context) -> str:
        await ctx.state.set("noted", data)
        return "ok"

    return [orders, broken, approve, send, flaky, note]


async def populate(url: str) -> dict[str, Any]:
    """Run flows on ``url`` and leave: completed and failed runs, a run awaiting a webhook,
    runs started by an event trigger and by an API trigger, standalone jobs waiting (on a
    paused queue), delayed and failed, trigger records, fires, schedule timers."""
    out: dict[str, Any] = {}
    async with running_app(url, *definitions(), scheduler=True) as (app, _):
        await app.backend.set_paused("mail", True)
        done = [await app.start("orders", {"id": i, "items": ["a", 1.5, None]}) for i in range(3)]
        failed = await app.start("broken", {"x": 1})
        awaiting = await app.start("approve", {"id": 7})
        fired = await app.emit("user.signed_up", {"id": 99})
        await app.triggers.create(
            {"name": "ops.manual", "type": "manual", "subscriptions": {"orders": {"mode": "auto"}}}
        )
        manual = await app.triggers.fire("ops.manual", {"id": 100})
        for run_id in [*done, *fired, *manual["run_ids"]]:
            assert (await app.wait(run_id, timeout=20))["status"] == "completed"
        assert (await app.wait(failed, timeout=20))["status"] == "failed"
        waiting = await app.enqueue("send", {"to": "a@example.com"})
        delayed = await app.enqueue("send", {"to": "b@example.com"}, delay="1h", key="b-mail")
        broken_job = await app.enqueue("flaky", {"n": 1})
        noted = await app.enqueue("note", {"text": "kept"})

        async def settled() -> bool:
            job = await app.backend.get_job(broken_job)
            other = await app.backend.get_job(noted)
            items, _ = await app.await_service.list_pending(50)
            return (
                job is not None
                and job.state == "failed"
                and other is not None
                and other.state == "completed"
                and len(items) == 1
            )

        await _wait_until(settled, timeout=20)
        items, _ = await app.await_service.list_pending(50)
        assert (await app.run(awaiting))["status"] == "awaiting"
        out.update(
            done=done,
            failed=failed,
            awaiting=awaiting,
            await_id=items[0]["await_id"],
            fired=fired + manual["run_ids"],
            waiting=waiting,
            delayed=delayed,
            broken_job=broken_job,
            noted=noted,
        )
    return out


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Backend]:
    backend = create_backend(url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


async def snapshot(backend: Backend) -> dict[str, Any]:
    """Everything a backend holds, comparable between backends (checkpoints left out)."""
    runs: dict[str, Any] = {}
    cursor = None
    while True:
        page = await backend.list_runs(limit=200, cursor=cursor)
        for record in page.items:
            runs[record.run_id] = {
                "record": record,
                "events": await backend.read_events(record.run_id),
                "state": await backend.export_state(record.run_id),
            }
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    jobs: dict[str, Any] = {}
    for queue in await backend.queue_counts():
        page_cursor = None
        while True:
            jobs_page = await backend.list_jobs(queue, None, 200, page_cursor)
            for job in jobs_page.items:
                jobs[job.id] = (job, await backend.export_state(f"job:{job.id}"))
            if jobs_page.next_cursor is None:
                break
            page_cursor = jobs_page.next_cursor
    records = {
        collection: await backend.export_records(collection, 10_000)
        for collection in await backend.record_collections()
        if collection != CHECKPOINTS
    }
    return {
        "runs": runs,
        "jobs": jobs,
        "records": records,
        "timers": sorted(
            (t.id, t.due, t.kind, orjson.dumps(t.data, option=orjson.OPT_SORT_KEYS))
            for t in await backend.list_timers()
        ),
        "paused": await backend.paused_queues(),
        "counts": await backend.queue_counts(),
    }
