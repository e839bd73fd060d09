"""Awaits on every backend: before/after a step, each type, timeouts, races, cancel, hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowtide import Context, Flow, awaits
from flowtide.engine.awaits import Gone
from tests.integration._engine_harness import running_app, types_of


async def pending_await(app: Any, run_id: str, wait_until: Any) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        items, _ = await app.await_service.list_pending(500)
        mine = [a for a in items if a["run_id"] == run_id]
        return mine[0] if mine else None

    await wait_until(found, timeout=10)
    result = await found()
    assert result is not None
    return result


def approval_flow(name: str = "approve", **options: Any) -> Flow:
    flow = Flow(name)

    @flow.entry(emits=["requested"])
    async def request(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await ctx.emit("requested", order)
        return order

    @flow.step(subscribes=["requested"], await_before=awaits.webhook(**options))
    async def ship(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"order": order, "approval": ctx.awaited}

    return flow


async def test_await_before_holds_the_step_until_resolved(
    backend_url: str, wait_until: Any
) -> None:
    async with running_app(backend_url, approval_flow(), scheduler=True) as (app, _):
        run_id = await app.start("approve", {"id": 7})
        pending = await pending_await(app, run_id, wait_until)
        assert pending["step"] == "ship" and pending["position"] == "before"
        assert pending["type"] == "webhook" and "/hooks/await/" in pending["url"]
        view = await app.run(run_id)
        assert view["status"] == "awaiting"
        assert view["steps"].get("ship", {}).get("status") in (None, "pending")
        awaiting = await app.backend.list_runs(flow="approve", status="awaiting")
        assert [r.run_id for r in awaiting.items] == [run_id]
        counts = await app.backend.queue_counts()
        assert counts.get("approve", {}).get("active", 0) == 0  # no slot, no lease held
        await app.resolve(pending["await_id"], {"ok": True})
        view = await app.wait(run_id, timeout=10)
        with pytest.raises(Gone):
            await app.resolve(pending["await_id"], {"ok": False})
        events = await_events(await app.backend.read_events(run_id))
    assert view["status"] == "completed"
    assert view["result"] == {"order": {"id": 7}, "approval": {"ok": True}}
    assert events == ["await.registered", "await.resolved"]


def await_events(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if e["type"].startswith("await.")]


async def test_webhook_token_resolves_once_under_concurrency(
    backend_url: str, wait_until: Any
) -> None:
    async with running_app(backend_url, approval_flow(), scheduler=True) as (app, _):
        run_id = await app.start("approve", {"id": 1})
        pending = await pending_await(app, run_id, wait_until)
        token = pending["url"].rsplit("/", 1)[1]
        results = await asyncio.gather(
            *(app.await_service.resolve_token(token, "POST", {"n": i}) for i in range(6)),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(r, Gone) for r in results if isinstance(r, BaseException))
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["status"] == "completed"
    assert await_events(events).count("await.resolved") == 1
    assert types_of(events, "ship").count("step.started") == 1


async def test_await_after_releases_dependents_and_completes_a_last_step(
    backend_url: str, wait_until: Any
) -> None:
    flow = Flow("after")

    @flow.entry(await_after=awaits.webhook())
    async def first(data: Any, ctx: Context) -> str:
        return "one"

    @flow.step(subscribes=["step:first"], await_after=awaits.webhook())
    async def last(value: str, ctx: Context) -> str:
        return value + "+two"

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start("after", {})
        first_await = await pending_await(app, run_id, wait_until)
        assert first_await["step"] == "first" and first_await["position"] == "after"
        view = await app.run(run_id)
        assert view["steps"]["first"]["status"] == "completed"
        assert "last" not in view["steps"]
        await app.resolve(first_await["await_id"], {})
        second = await pending_await(app, run_id, wait_until)
        assert second["step"] == "last"
        assert (await app.run(run_id))["status"] == "awaiting"
        await app.resolve(second["await_id"], {})
        view = await app.wait(run_id, timeout=10)
    assert view["status"] == "completed" and view["result"] == "one+two"


async def test_before_and_after_on_one_step(backend_url: str, wait_until: Any) -> None:
    flow = Flow("both")
    calls: list[Any] = []

    @flow.entry(await_before=awaits.webhook(), await_after=awaits.webhook())
    async def only(data: Any, ctx: Context) -> str:
        calls.append(ctx.awaited)
        return "done"

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start("both", {"x": 1})
        before = await pending_await(app, run_id, wait_until)
        assert before["position"] == "before" and calls == []
        await app.resolve(before["await_id"], {"go": 1})
        after = await pending_await(app, run_id, wait_until)
        assert after["position"] == "after" and calls == [{"go": 1}]
        await app.resolve(after["await_id"], None)
        view = await app.wait(run_id, timeout=10)
    assert view["status"] == "completed" and calls == [{"go": 1}]


async def test_time_await_resumes_after_its_delay(backend_url: str) -> None:
    flow = Flow("later")

    @flow.entry(await_before=awaits.time("300ms"))
    async def go(data: Any, ctx: Context) -> Any:
        return ctx.awaited

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start("later", {})
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    registered = next(e for e in events if e["type"] == "await.registered")
    resolved = next(e for e in events if e["type"] == "await.resolved")
    assert registered["data"]["delay_ms"] == 300
    assert resolved["ts"] >= registered["data"]["deadline"]
    assert view["status"] == "completed" and "resumed_at" in view["result"]


async def test_until_await_resolves_at_the_next_occurrence(backend_url: str) -> None:
    flow = Flow("tick")

    @flow.entry(await_before=awaits.until("* * * * * *", tz="Europe/Berlin"))
    async def go(data: Any, ctx: Context) -> Any:
        return ctx.awaited

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start("tick", {})
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    registered = next(e for e in events if e["type"] == "await.registered")
    assert registered["data"]["cron"] == "* * * * * *"
    assert view["result"]["scheduled_at"] == registered["data"]["next_occurrence"]


async def test_event_await_matches_and_ignores_earlier_events(
    backend_url: str, wait_until: Any
) -> None:
    flow = Flow("pay")

    @flow.entry(await_before=awaits.event("payment.settled", match={"order_id": "input.order_id"}))
    async def settle(order: dict[str, Any], ctx: Context) -> Any:
        return ctx.awaited

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        await app.emit("payment.settled", {"order_id": 5, "early": True})
        run_id = await app.start("pay", {"order_id": 5})
        other = await app.start("pay", {"order_id": 6})
        await pending_await(app, run_id, wait_until)
        await app.emit("payment.settled", {"order_id": 6, "amount": 2})
        assert (await app.wait(other, timeout=10))["result"] == {"order_id": 6, "amount": 2}
        assert (await app.run(run_id))["status"] == "awaiting"
        await app.emit("payment.settled", {"order_id": 5, "amount": 1})
        view = await app.wait(run_id, timeout=10)
    assert view["result"] == {"order_id": 5, "amount": 1}


async def test_event_await_resolves_on_a_fire_of_the_event_trigger(
    backend_url: str, wait_until: Any
) -> None:
    from flowtide import triggers

    flow = Flow("paid")

    @flow.entry(await_before=awaits.event("invoice.paid", match={"id": "input.id"}))
    async def book(data: dict[str, Any], ctx: Context) -> Any:
        return ctx.awaited

    listener = Flow("thanks")

    @listener.entry(triggers=[triggers.event("invoice.paid")])
    async def thank(data: Any, ctx: Context) -> None:
        return None

    async with running_app(backend_url, flow, listener, scheduler=True) as (app, _):
        run_id = await app.start("paid", {"id": 3})
        await pending_await(app, run_id, wait_until)
        fire = await app.triggers.fire("invoice.paid", {"id": 3, "amount": 9})
        view = await app.wait(run_id, timeout=10)
    assert len(fire["run_ids"]) == 1
    assert view["result"] == {"id": 3, "amount": 9}


async def test_event_await_resolves_on_a_steps_emit(backend_url: str, wait_until: Any) -> None:
    waiter = Flow("waiter")

    @waiter.entry(await_before=awaits.event("ready", match={"key": "input.key"}))
    async def wait_for_it(data: dict[str, Any], ctx: Context) -> Any:
        return ctx.awaited

    sender = Flow("sender")

    @sender.entry(emits=["ready"])
    async def send(data: dict[str, Any], ctx: Context) -> None:
        await ctx.emit("ready", {"key": data["key"], "from": "sender"})

    async with running_app(backend_url, waiter, sender, scheduler=True) as (app, _):
        run_id = await app.start("waiter", {"key": "k1"})
        await pending_await(app, run_id, wait_until)
        await app.start("sender", {"key": "k1"})
        view = await app.wait(run_id, timeout=10)
    assert view["result"] == {"key": "k1", "from": "sender"}


@pytest.mark.parametrize(("on_timeout", "status"), [("fail", "failed"), ("continue", "completed")])
async def test_timeout_fail_and_continue(backend_url: str, on_timeout: str, status: str) -> None:
    flow = Flow(f"to-{on_timeout}")

    @flow.entry(await_before=awaits.webhook(timeout="200ms", on_timeout=on_timeout))  # type: ignore[arg-type]
    async def go(data: Any, ctx: Context) -> Any:
        return {"awaited": ctx.awaited}

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start(flow.name, {})
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["status"] == status
    timed_out = [e for e in events if e["type"] == "await.timed_out"]
    assert len(timed_out) == 1 and timed_out[0]["data"]["action"] == on_timeout
    if status == "failed":
        assert view["error"]["type"] == "AwaitTimeout"
        assert types_of(events, "go").count("step.started") == 0
    else:
        assert view["result"] == {"awaited": None}


async def test_timeout_retry_rearms_then_fails(backend_url: str) -> None:
    flow = Flow("to-retry")

    @flow.entry(
        await_before=awaits.event("never", timeout="150ms", on_timeout="retry", max_retries=2)
    )
    async def go(data: Any, ctx: Context) -> None:
        return None

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start(flow.name, {})
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    actions = [e["data"]["action"] for e in events if e["type"] == "await.timed_out"]
    assert actions == ["retry", "retry", "fail"]
    assert await_events(events).count("await.registered") == 3
    assert view["status"] == "failed"


async def test_cancel_closes_awaits(backend_url: str, wait_until: Any) -> None:
    async with running_app(backend_url, approval_flow("approve2"), scheduler=True) as (app, _):
        run_id = await app.start("approve2", {"id": 1})
        pending = await pending_await(app, run_id, wait_until)
        await app.cancel(run_id)
        with pytest.raises(Gone):
            await app.resolve(pending["await_id"], {})
        token = pending["url"].rsplit("/", 1)[1]
        with pytest.raises(Gone):
            await app.await_service.resolve_token(token, "POST", {})
        items, _ = await app.await_service.list_pending(500)
        assert all(a["run_id"] != run_id for a in items)
        timers = await app.backend.list_timers()
        assert not [t for t in timers if t.kind == "await" and run_id in t.id]
        view = await app.run(run_id)
    assert view["status"] == "canceled"


async def test_hooks_are_called_and_a_failing_hook_is_logged(
    backend_url: str, wait_until: Any
) -> None:
    seen: list[tuple[str, Any]] = []
    flow = Flow("hooked")

    def on_register(info: dict[str, Any]) -> None:
        seen.append(("register", info["url"]))
        raise RuntimeError("mail server down")

    async def on_resolve(info: dict[str, Any]) -> None:
        seen.append(("resolve", info["data"]))

    @flow.entry(await_before=awaits.webhook(), on_register=on_register, on_resolve=on_resolve)
    async def go(data: Any, ctx: Context) -> None:
        return None

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        run_id = await app.start("hooked", {})
        pending = await pending_await(app, run_id, wait_until)
        await app.resolve(pending["await_id"], {"by": "ann"})
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["status"] == "completed"
    assert seen == [("register", pending["url"]), ("resolve", {"by": "ann"})]
    logs = [e["data"]["message"] for e in events if e["type"] == "log"]
    assert any("on_register failed" in m and "mail server down" in m for m in logs)


async def test_an_overdue_await_is_acted_on_once_after_downtime(backend_url: str) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("the memory backend does not outlive its process")
    flow = Flow("overdue")

    @flow.entry(await_before=awaits.time("100ms"))
    async def go(data: Any, ctx: Context) -> str:
        return "resumed"

    async with running_app(backend_url, flow, worker=False) as (app, _):
        run_id = await app.start("overdue", {})
    await asyncio.sleep(0.3)  # the deadline passes while no process runs timers
    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["status"] == "completed"
    assert await_events(events) == ["await.registered", "await.resolved"]
