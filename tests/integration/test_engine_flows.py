"""Flow execution on every backend: wiring, retries, failures, timeouts, state, cancel."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from pydantic import BaseModel

from flowtide import Backoff, Context, Flow
from flowtide.engine import orchestrator
from tests.integration._engine_harness import make_config, running_app, types_of


def diamond() -> Flow:
    flow = Flow("diamond")

    @flow.entry(emits=["go"])
    async def start(n: int, ctx: Context) -> int:
        await ctx.emit("go", {"n": n})
        return n

    @flow.step(subscribes=["go"], emits=["left.done"])
    async def left(ev: dict[str, int], ctx: Context) -> int:
        await ctx.emit("left.done", ev["n"] + 1)
        return ev["n"] + 1

    @flow.step(subscribes=["go"])
    def right(ev: dict[str, int], ctx: Any) -> int:
        return ev["n"] * 10

    @flow.step(subscribes=["left.done", "step:right"])
    async def join(inputs: dict[str, int], ctx: Context) -> int:
        return inputs["left.done"] + inputs["step:right"]

    return flow


async def test_fan_out_and_fan_in_complete_once(backend_url: str) -> None:
    async with running_app(backend_url, diamond()) as (app, _):
        run_id = await app.start("diamond", 4)
        view = await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert view["status"] == "completed"
    assert view["result"] == 5 + 40
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    completed = [e["step"] for e in events if e["type"] == "step.completed"]
    assert sorted(completed) == ["join", "left", "right", "start"]
    terminal = [e for e in events if e["type"].startswith("flow.") and e["type"] != "flow.started"]
    assert [e["type"] for e in terminal] == ["flow.completed"]
    assert events[-1]["type"] == "flow.completed"
    seq_of = {(e["type"], e["step"]): e["seq"] for e in events}
    join_started = seq_of[("step.started", "join")]
    assert join_started > seq_of[("step.completed", "left")]
    assert join_started > seq_of[("step.completed", "right")]


async def test_retries_with_fixed_backoff_then_success(backend_url: str) -> None:
    flow = Flow("flaky")
    calls: list[float] = []

    @flow.entry(retries=3, backoff=Backoff.fixed("150ms"))
    async def work(_: Any, ctx: Context) -> int:
        calls.append(time.monotonic())
        if ctx.attempt < 3:
            raise ConnectionError(f"boom {ctx.attempt}")
        return ctx.attempt

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("flaky"), timeout=10)
        events = await app.backend.read_events(view["run_id"])
    assert view["status"] == "completed"
    assert view["steps"]["work"]["attempts"] == 3
    assert types_of(events, "work") == [
        "step.started",
        "step.retrying",
        "step.started",
        "step.retrying",
        "step.started",
        "step.completed",
    ]
    retrying = [e for e in events if e["type"] == "step.retrying"]
    assert retrying[0]["data"]["error"]["message"] == "boom 1"
    assert retrying[0]["data"]["next_attempt"] == 2
    assert all(b - a >= 0.14 for a, b in itertools.pairwise(calls))


async def test_exponential_backoff_delays_grow(backend_url: str) -> None:
    flow = Flow("expo")

    @flow.entry(retries=2, backoff=Backoff.exponential("100ms", max="1s", jitter=False))
    async def work(_: Any, ctx: Context) -> None:
        raise RuntimeError("always")

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("expo"), timeout=10)
        events = await app.backend.read_events(view["run_id"])
    delays = [e["data"]["delay_ms"] for e in events if e["type"] == "step.retrying"]
    assert delays == [100, 200]
    assert view["status"] == "failed"
    assert types_of(events).count("step.started") == 3
    assert types_of(events).count("step.failed") == 1


async def test_final_failure_fails_run_and_starts_nothing_more(backend_url: str) -> None:
    flow = Flow("breaks")

    @flow.entry(emits=["a"])
    async def first(_: Any, ctx: Context) -> None:
        await ctx.emit("a")

    @flow.step(subscribes=["a"])
    async def bad(_: Any, ctx: Context) -> None:
        raise ValueError("bad input")

    @flow.step(subscribes=["step:bad"])
    async def after(_: Any, ctx: Context) -> None:
        raise AssertionError("must never run")

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("breaks"), timeout=10)
        events = await app.backend.read_events(view["run_id"])
    assert view["status"] == "failed"
    assert view["error"]["step"] == "bad"
    assert view["error"]["type"] == "ValueError"
    assert "after" not in view["steps"]
    assert types_of(events).count("flow.failed") == 1
    assert not any(t in ("flow.completed", "flow.canceled") for t in types_of(events))


async def test_optional_step_failure_does_not_fail_run(backend_url: str) -> None:
    flow = Flow("opt")

    @flow.entry(emits=["x"])
    async def first(_: Any, ctx: Context) -> None:
        await ctx.emit("x")

    @flow.step(subscribes=["x"], optional=True)
    async def maybe(_: Any, ctx: Context) -> None:
        raise RuntimeError("not important")

    @flow.step(subscribes=["x"])
    async def needed(_: Any, ctx: Context) -> str:
        return "ok"

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("opt"), timeout=10)
    assert view["status"] == "completed"
    assert view["steps"]["maybe"]["status"] == "failed"
    assert view["steps"]["needed"]["status"] == "completed"


class Payment(BaseModel):
    amount: int


async def test_validation_failure_fails_at_once_without_retry(backend_url: str) -> None:
    flow = Flow("typed")

    @flow.entry(emits=["pay"])
    async def first(_: Any, ctx: Context) -> None:
        await ctx.emit("pay", {"amount": "lots"})

    @flow.step(subscribes=["pay"], retries=5)
    async def charge(p: Payment, ctx: Context) -> int:
        return p.amount

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("typed"), timeout=10)
    step = view["steps"]["charge"]
    assert view["status"] == "failed"
    assert step["attempts"] == 1
    assert step["error"]["type"] == "ValidationError"
    assert step["error"]["errors"][0]["loc"] == ["amount"]


async def test_entry_input_validated_at_start(backend_url: str) -> None:
    flow = Flow("typed_entry")

    @flow.entry()
    async def first(p: Payment, ctx: Context) -> int:
        assert isinstance(p, Payment)
        return p.amount * 2

    async with running_app(backend_url, flow) as (app, _):
        from flowtide import InvalidInput

        with pytest.raises(InvalidInput) as info:
            await app.start("typed_entry", {"amount": "x"})
        assert info.value.errors[0]["loc"] == ["amount"]
        view = await app.wait(await app.start("typed_entry", {"amount": 21}), timeout=10)
    assert view["result"] == 42


async def test_not_serializable_result_fails_with_message(backend_url: str) -> None:
    flow = Flow("weird")

    @flow.entry(retries=2)
    async def first(_: Any, ctx: Context) -> object:
        return object()

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("weird"), timeout=10)
    error = view["steps"]["first"]["error"]
    assert view["status"] == "failed"
    assert error["type"] == "NotSerializable"
    assert "not JSON-serializable" in error["message"]
    assert view["steps"]["first"]["attempts"] == 1


@pytest.mark.parametrize("kind", ["async", "def"])
async def test_timeout_is_enforced(backend_url: str, kind: str) -> None:
    flow = Flow(f"slow_{kind}")
    if kind == "async":

        @flow.entry(timeout="200ms")
        async def first(_: Any, ctx: Context) -> None:
            await asyncio.sleep(30)
    else:

        @flow.entry(timeout="200ms")
        def first(_: Any, ctx: Any) -> None:
            time.sleep(1.0)

    async with running_app(backend_url, flow) as (app, _):
        t0 = time.monotonic()
        view = await app.wait(await app.start(f"slow_{kind}"), timeout=10)
        assert time.monotonic() - t0 < 5
    assert view["status"] == "failed"
    assert view["steps"]["first"]["error"]["type"] == "Timeout"


async def test_state_is_shared_between_steps_and_recorded(backend_url: str) -> None:
    flow = Flow("stateful")

    @flow.entry()
    async def first(_: Any, ctx: Context) -> None:
        await ctx.state.set("a", 1)
        await ctx.state.set("b", {"x": [1, 2]})
        assert await ctx.state.get("a") == 1  # reads its own buffered write

    @flow.step(subscribes=["step:first"])
    def second(_: Any, ctx: Any) -> dict[str, Any]:
        seen = ctx.state.items()
        ctx.state.delete("a")
        ctx.state.set("c", "three")
        return seen

    @flow.step(subscribes=["step:second"])
    async def third(_: Any, ctx: Context) -> dict[str, Any]:
        return {"a": await ctx.state.get("a", "gone"), "all": await ctx.state.items()}

    async with running_app(backend_url, flow) as (app, _):
        view = await app.wait(await app.start("stateful"), timeout=10)
        run_id = view["run_id"]
        events = await app.backend.read_events(run_id)
        state_events = [e for e in events if e["type"] == "state"]
        first_done = next(e["seq"] for e in events if e["type"] == "step.completed")
        past = await app.service.state_at(run_id, first_done)
        now_state = await app.service.state_at(run_id, None)
    assert view["steps"]["second"]["result"] == {"a": 1, "b": {"x": [1, 2]}}
    assert view["result"] == {"a": "gone", "all": {"b": {"x": [1, 2]}, "c": "three"}}
    assert [(e["data"]["op"], e["data"]["key"]) for e in state_events] == [
        ("set", "a"),
        ("set", "b"),
        ("delete", "a"),
        ("set", "c"),
    ]
    assert past == {"at": first_done, "state": {"a": 1, "b": {"x": [1, 2]}}}
    assert now_state["state"] == {"b": {"x": [1, 2]}, "c": "three"}


async def test_state_ttl_expires(backend_url: str, wait_until: Any) -> None:
    flow = Flow("ttl")

    @flow.entry()
    async def first(_: Any, ctx: Context) -> None:
        await ctx.state.set("short", 1, ttl="200ms")
        await ctx.state.set("long", 2)

    async with running_app(backend_url, flow) as (app, _):
        run_id = await app.start("ttl")
        await app.wait(run_id, timeout=10)
        assert await app.backend.get_state(run_id, "long") == (True, 2)

        async def expired() -> bool:
            return (await app.backend.get_state(run_id, "short"))[0] is False

        await wait_until(expired, timeout=5)
        assert (await app.service.state_at(run_id, None))["state"] == {"long": 2}


@pytest.mark.parametrize("cleanup", ["on-complete", "never"])
async def test_state_cleanup_on_complete(backend_url: str, cleanup: str) -> None:
    flow = Flow("cleanup")

    @flow.entry()
    async def first(_: Any, ctx: Context) -> None:
        await ctx.state.set("k", "v")

    config = make_config(backend_url, state={"cleanup": cleanup})
    async with running_app(backend_url, flow, config=config) as (app, _):
        run_id = await app.start("cleanup")
        await app.wait(run_id, timeout=10)
        items = await app.backend.state_items(run_id)
        history = await app.service.state_at(run_id, None)
    assert items == ({} if cleanup == "on-complete" else {"k": "v"})
    assert history["state"] == {"k": "v"}  # the history keeps every change either way


async def test_cancel_stops_the_run_and_its_queued_jobs(backend_url: str, wait_until: Any) -> None:
    flow = Flow("cancelme")
    release = asyncio.Event()

    @flow.entry(emits=["next"])
    async def first(_: Any, ctx: Context) -> None:
        await ctx.emit("next")
        await release.wait()

    @flow.step(subscribes=["next"])
    async def second(_: Any, ctx: Context) -> None:
        raise AssertionError("must not start after cancel")

    async with running_app(backend_url, flow) as (app, _):
        run_id = await app.start("cancelme")

        async def first_running() -> bool:
            view = await app.run(run_id)
            return bool(view["steps"].get("first", {}).get("status") == "running")

        await wait_until(first_running, timeout=5)
        await app.cancel(run_id)
        with pytest.raises(orchestrator.Conflict):
            await app.cancel(run_id)
        release.set()
        view = await app.wait(run_id, timeout=10)

        async def first_recorded() -> list[dict[str, Any]] | None:
            # the step that was running when the run was canceled finishes and is recorded
            events = await app.backend.read_events(run_id)
            return events if "step.completed" in types_of(events) else None

        events = await wait_until(first_recorded, timeout=5)
    assert view["status"] == "canceled"
    assert types_of(events).count("flow.canceled") == 1
    assert "second" not in {e["step"] for e in events}
    assert "step.completed" in types_of(events, "first")


async def test_restart_starts_a_new_run_with_the_same_input(backend_url: str) -> None:
    async with running_app(backend_url, diamond()) as (app, _):
        first = await app.start("diamond", 2)
        await app.wait(first, timeout=10)
        second = await app.restart(first)
        view = await app.wait(second, timeout=10)
    assert second != first
    assert view["input"] == 2 and view["result"] == 3 + 20


async def test_context_identity_logs_and_child_runs(backend_url: str) -> None:
    child = Flow("child")

    @child.entry()
    async def hello(name: str, ctx: Context) -> str:
        return f"hi {name}"

    parent = Flow("parent")
    seen: dict[str, Any] = {}

    @parent.entry(triggers=[])
    async def spawn(_: Any, ctx: Context) -> str:
        seen.update(run_id=ctx.run_id, flow=ctx.flow, step=ctx.step, attempt=ctx.attempt)
        seen.update(job_id=ctx.job_id, trigger=ctx.trigger, awaited=ctx.awaited)
        ctx.log.info("spawning", who="bob")
        return await ctx.flows.start("child", "bob")

    async with running_app(backend_url, parent, child) as (app, _):
        run_id = await app.start("parent")
        view = await app.wait(run_id, timeout=10)
        child_view = await app.wait(view["result"], timeout=10)
        events = await app.backend.read_events(run_id)
    assert seen == {
        "run_id": run_id,
        "flow": "parent",
        "step": "spawn",
        "attempt": 1,
        "job_id": f"{run_id}:spawn",
        "trigger": None,
        "awaited": None,
    }
    log = next(e for e in events if e["type"] == "log")
    assert log["data"] == {"level": "info", "message": "spawning", "fields": {"who": "bob"}}
    assert log["step"] == "spawn" and log["attempt"] == 1
    assert child_view["result"] == "hi bob"


async def test_event_trigger_starts_subscribed_flows(backend_url: str) -> None:
    from flowtide import triggers

    flow = Flow("welcome")

    @flow.entry(triggers=[triggers.event("user.signed_up")])
    async def greet(user: dict[str, str], ctx: Context) -> dict[str, Any]:
        assert ctx.trigger is not None
        return {"name": user["name"], "trigger": [ctx.trigger.name, ctx.trigger.type]}

    async with running_app(backend_url, flow) as (app, _):
        (run_id,) = await app.emit("user.signed_up", {"name": "ann"})
        view = await app.wait(run_id, timeout=10)
        assert await app.emit("nobody.listens") == []
    assert view["result"] == {"name": "ann", "trigger": ["user.signed_up", "event"]}


async def test_wait_times_out(backend_url: str) -> None:
    flow = Flow("never")

    @flow.entry()
    async def first(_: Any, ctx: Context) -> None:
        return None

    async with running_app(backend_url, flow, worker=False) as (app, _):
        run_id = await app.start("never")
        with pytest.raises(TimeoutError):
            await app.wait(run_id, timeout=0.2)


async def test_logs_of_a_long_step_appear_while_it_runs(backend_url: str, wait_until: Any) -> None:
    flow = Flow("chatty")
    release = asyncio.Event()

    @flow.entry()
    async def long(_: Any, ctx: Context) -> None:
        ctx.log.info("halfway", pct=50)
        await release.wait()

    async with running_app(backend_url, flow) as (app, _):
        run_id = await app.start("chatty")

        async def logged() -> bool:
            return "log" in types_of(await app.backend.read_events(run_id))

        await wait_until(logged, timeout=5)
        assert (await app.backend.get_run(run_id)).status == "running"  # type: ignore[union-attr]
        release.set()
        await app.wait(run_id, timeout=10)
        events = await app.backend.read_events(run_id)
    assert types_of(events).count("log") == 1
