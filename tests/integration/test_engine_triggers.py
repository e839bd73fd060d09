"""Entry triggers on every backend: registry, reconciliation, fires, events, schedules."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest

from flowtide import Context, Flow, triggers
from flowtide.engine.runs import InvalidInput, NotFound
from flowtide.engine.schedules import ScheduleService
from flowtide.engine.triggers import Paused, TriggerError
from tests.integration._engine_harness import running_app


class Signup(pydantic.BaseModel):
    email: str


def signup_flows() -> tuple[Flow, Flow]:
    welcome = Flow("welcome")

    @welcome.entry(triggers=[triggers.event("user.signed_up"), triggers.manual(schema=Signup)])
    async def greet(user: dict[str, Any], ctx: Context) -> dict[str, Any]:
        assert ctx.trigger is not None
        return {"user": user, "trigger": [ctx.trigger.name, ctx.trigger.type, ctx.trigger.data]}

    audit = Flow("audit")

    @audit.entry(triggers=[triggers.event("user.signed_up", mode="manual")])
    async def record(user: Any, ctx: Context) -> None:
        return None

    return welcome, audit


async def test_code_triggers_are_registered_with_their_subscriptions(backend_url: str) -> None:
    async with running_app(backend_url, *signup_flows(), worker=False) as (app, _):
        docs = {d["name"]: d for d in await app.triggers.list()}
        manual = await app.triggers.get("welcome.manual")
    event = docs["user.signed_up"]
    assert event["type"] == "event" and event["source"] == "code"
    assert event["subscriptions"] == {"welcome": {"mode": "auto"}, "audit": {"mode": "manual"}}
    assert manual["schema"]["properties"]["email"]["type"] == "string"


async def test_emit_starts_each_auto_subscriber_once_and_records_the_fire(
    backend_url: str,
) -> None:
    async with running_app(backend_url, *signup_flows()) as (app, _):
        (run_id,) = await app.emit("user.signed_up", {"email": "a@x", "run_id": "spoof"})
        view = await app.wait(run_id, timeout=10)
        (fire,) = await app.triggers.fires("user.signed_up")
        stats = await app.trigger_service.stats("user.signed_up")
    assert view["run_id"] == run_id and view["flow"] == "welcome"
    assert view["result"]["trigger"] == [
        "user.signed_up",
        "event",
        {"email": "a@x", "run_id": "spoof"},
    ]
    assert fire["run_ids"] == [run_id]
    assert fire["skipped"] == [{"flow": "audit", "reason": "manual subscription"}]
    assert stats["fires"] == 1 and stats["runs_started"] == 1 and stats["last_fire_at"]


async def test_a_fire_with_a_given_id_starts_its_runs_once(backend_url: str) -> None:
    from flowtide.engine.triggers import FireRequest

    async with running_app(backend_url, *signup_flows(), worker=False) as (app, _):
        service = app.trigger_service
        request = FireRequest({"email": "b@x"}, "api", fire_id="fixed-fire-id", ts=1.8e9)
        first, second = await asyncio.gather(
            service.fire("user.signed_up", request), service.fire("user.signed_up", request)
        )
        runs = await app.backend.list_runs(flow="welcome")
        stats = await service.stats("user.signed_up")
    assert first["run_ids"] == second["run_ids"] and len(first["run_ids"]) == 1
    assert len(runs.items) == 1 and stats["fires"] == 1


async def test_manual_trigger_validates_against_its_schema(backend_url: str) -> None:
    async with running_app(backend_url, *signup_flows()) as (app, _):
        with pytest.raises(InvalidInput) as caught:
            await app.triggers.fire("welcome.manual", {"nope": 1})
        assert caught.value.errors[0]["loc"] == ["email"]
        fire = await app.triggers.fire("welcome.manual", {"email": "c@x"})
        view = await app.wait(fire["run_ids"][0], timeout=10)
    assert view["result"]["trigger"][:2] == ["welcome.manual", "manual"]


async def test_pause_resume_replay_and_delete(backend_url: str) -> None:
    async with running_app(backend_url, *signup_flows()) as (app, _):
        await app.triggers.pause("user.signed_up")
        with pytest.raises(Paused):
            await app.triggers.fire("user.signed_up", {"email": "d@x"})
        assert await app.emit("user.signed_up", {"email": "d@x"}) == []
        await app.triggers.resume("user.signed_up")
        original = await app.triggers.fire("user.signed_up", {"email": "e@x"})
        replay = await app.triggers.replay("user.signed_up", original["fire_id"])
        fires = await app.triggers.fires("user.signed_up")
        await app.triggers.delete("user.signed_up")
        with pytest.raises(NotFound):
            await app.triggers.fire("user.signed_up", {})
    assert replay["replay_of"] == original["fire_id"] and replay["source"] == "replay"
    assert replay["run_ids"] and replay["run_ids"] != original["run_ids"]
    assert [f["fire_id"] for f in fires] == [replay["fire_id"], original["fire_id"]]


async def test_runtime_triggers_and_validation(backend_url: str) -> None:
    async with running_app(backend_url, *signup_flows()) as (app, _):
        with pytest.raises(TriggerError, match="invalid cron"):
            await app.triggers.create(
                {"name": "bad", "type": "schedule", "options": {"cron": "61 * * * *"}}
            )
        with pytest.raises(TriggerError, match="time zone"):
            await app.triggers.create(
                {"name": "bad", "type": "schedule", "options": {"cron": "* * * * *", "tz": "X/Y"}}
            )
        doc = await app.triggers.create(
            {
                "name": "ops.manual",
                "type": "manual",
                "schema": {"type": "object", "required": ["email"]},
                "subscriptions": {"welcome": {"mode": "auto"}},
            }
        )
        assert doc["source"] == "api"
        with pytest.raises(InvalidInput):
            await app.triggers.fire("ops.manual", {})
        fire = await app.triggers.fire("ops.manual", {"email": "f@x"})
        assert (await app.wait(fire["run_ids"][0], timeout=10))["status"] == "completed"


async def test_reconcile_keeps_runtime_edits_until_the_code_changes(backend_url: str) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("the memory backend does not outlive its app")
    welcome, audit = signup_flows()
    async with running_app(backend_url, welcome, audit, worker=False) as (app, _):
        await app.triggers.subscribe("user.signed_up", "audit", "auto")
        await app.triggers.pause("user.signed_up")
    async with running_app(backend_url, welcome, audit, worker=False) as (app, _):
        kept = await app.triggers.get("user.signed_up")
    assert kept["subscriptions"]["audit"] == {"mode": "auto"} and kept["status"] == "paused"
    changed = Flow("welcome")

    @changed.entry(triggers=[triggers.event("user.signed_up", from_emits=True)])
    async def greet(user: Any, ctx: Context) -> None:
        return None

    async with running_app(backend_url, changed, audit, worker=False) as (app, _):
        updated = await app.triggers.get("user.signed_up")
    assert updated["options"]["from_emits"] is True
    assert updated["status"] == "paused"  # status is run-time state: kept


async def test_changes_reach_another_process_within_two_seconds(
    backend_url: str, wait_until: Any
) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("one process only")
    async with (
        running_app(backend_url, *signup_flows(), worker=False) as (one, _),
        running_app(backend_url, *signup_flows(), worker=False) as (two, _),
    ):
        stop = asyncio.Event()
        sync = asyncio.create_task(two.trigger_service.run_sync(stop))
        try:
            await one.triggers.pause("user.signed_up")
            started = asyncio.get_running_loop().time()

            async def paused_there() -> bool:
                doc = two.trigger_service.cache.get("user.signed_up")
                return doc is not None and doc["status"] == "paused"

            await wait_until(paused_there, timeout=2.5)
            assert asyncio.get_running_loop().time() - started < 2.0
            assert await two.emit("user.signed_up", {"email": "x"}) == []
        finally:
            stop.set()
            await sync


async def test_step_emits_fire_triggers_that_listen_to_flow_emits(
    backend_url: str, wait_until: Any
) -> None:
    source = Flow("source")

    @source.entry(emits=["order.placed"])
    async def place(data: Any, ctx: Context) -> None:
        await ctx.emit("order.placed", {"n": data["n"]})

    listener = Flow("listener")

    @listener.entry(triggers=[triggers.event("order.placed", from_emits=True)])
    async def react(data: dict[str, Any], ctx: Context) -> int:
        return int(data["n"]) * 10

    async with running_app(backend_url, source, listener, scheduler=True) as (app, _):
        run_id = await app.start("source", {"n": 4})
        await app.wait(run_id, timeout=10)

        async def fired() -> list[dict[str, Any]]:
            return await app.triggers.fires("order.placed")

        await wait_until(fired, timeout=10)
        (fire,) = await fired()
        view = await app.wait(fire["run_ids"][0], timeout=10)
        runs = await app.backend.list_runs(flow="listener")
    assert fire["source"] == "emit" and view["result"] == 40 and len(runs.items) == 1


async def test_interval_schedule_fires_each_occurrence(backend_url: str, wait_until: Any) -> None:
    flow = Flow("ticker")

    @flow.entry(triggers=[triggers.schedule(every="300ms")])
    async def tick(data: dict[str, Any], ctx: Context) -> str:
        return str(data["scheduled_at"])

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        await wait_until(lambda: _count_fires(app, "ticker.schedule", 3), timeout=10)
        fires = await app.triggers.fires("ticker.schedule")
        (schedule,) = await ScheduleService(app.trigger_service).list()
        await app.triggers.pause("ticker.schedule")
        timers = [t for t in await app.backend.list_timers() if t.kind == "schedule"]
    assert len(fires) >= 3
    slots = [f["scheduled_at"] for f in fires]
    assert len(set(slots)) == len(slots)  # each occurrence once
    assert schedule["name"] == "ticker.schedule" and schedule["last_at"]
    assert timers == []  # paused: nothing armed


async def test_schedule_overlap_skip_records_the_skip(backend_url: str, wait_until: Any) -> None:
    flow = Flow("slow")
    release = asyncio.Event()

    @flow.entry(triggers=[triggers.schedule(every="200ms", overlap="skip")])
    async def work(data: Any, ctx: Context) -> None:
        await release.wait()

    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        await wait_until(lambda: _count_fires(app, "slow.schedule", 3), timeout=10)
        fires = await app.triggers.fires("slow.schedule")
        release.set()
        await app.triggers.pause("slow.schedule")
        runs = await app.backend.list_runs(flow="slow")
    started = [f for f in fires if f["run_ids"]]
    skipped = [f for f in fires if f["skipped"]]
    assert len(runs.items) == len(started) >= 1
    assert skipped and "overlap" in skipped[0]["skipped"][0]["reason"]


def _daily(name: str, **options: Any) -> Flow:
    flow = Flow(name)

    @flow.entry(triggers=[triggers.schedule("0 3 * * *", tz="America/New_York", **options)])
    async def job(data: dict[str, Any], ctx: Context) -> str:
        return str(data["scheduled_at"])

    return flow


async def _overdue(app: Any, name: str, late: float) -> float:
    """Re-arm the schedule's timer as if its occurrence fell due ``late`` seconds ago."""
    from flowtide._util.clock import now
    from flowtide.backends.base import CommitItem, Timer, Transition
    from flowtide.engine.occurrences import timer_id

    doc = await app.triggers.get(name)
    at = now() - late
    timer = Timer(
        timer_id(name), at, "schedule", {"name": name, "at": at, "def_hash": doc["def_hash"]}
    )
    await app.backend.commit([CommitItem(None, lambda _: Transition(timers=[timer]))])
    return at


@pytest.mark.parametrize(("catch_up", "fired"), [("none", 0), ("once", 1)])
async def test_missed_occurrences_after_downtime(
    backend_url: str, catch_up: str, fired: int, wait_until: Any
) -> None:
    name = f"daily_{catch_up}"
    async with running_app(backend_url, _daily(name, catch_up=catch_up), worker=False) as (app, _):
        await _overdue(app, f"{name}.schedule", late=3600)
    async with running_app(backend_url, _daily(name, catch_up=catch_up), scheduler=True) as (
        app,
        _,
    ):
        if backend_url.startswith("memory"):
            await _overdue(app, f"{name}.schedule", late=3600)

        async def rearmed() -> bool:
            (sched,) = [s for s in await ScheduleService(app.trigger_service).list()]
            return sched["last_at"] is not None or sched["missed"] > 0

        await wait_until(rearmed, timeout=10)
        fires = await app.triggers.fires(f"{name}.schedule")
        (sched,) = await ScheduleService(app.trigger_service).list()
    assert len(fires) == fired
    assert sched["missed"] == (1 - fired)
    assert sched["next_at"] > fires[0]["ts"] if fires else sched["next_at"]


@pytest.mark.parametrize("overlap", ["queue", "replace"])
async def test_overlap_queue_and_replace(backend_url: str, overlap: str, wait_until: Any) -> None:
    flow = Flow(f"busy_{overlap}")
    release = asyncio.Event()

    @flow.entry(triggers=[triggers.schedule("0 3 * * *", overlap=overlap)])  # type: ignore[arg-type]
    async def work(data: Any, ctx: Context) -> None:
        await release.wait()

    name = f"busy_{overlap}.schedule"
    async with running_app(backend_url, flow, scheduler=True) as (app, _):
        first_at = await _overdue(app, name, late=1)
        await wait_until(lambda: _count_fires(app, name, 1), timeout=10)
        (first,) = await app.triggers.fires(name)

        async def handled() -> bool:  # the occurrence's timer was moved on to the next one
            timers = [t for t in await app.backend.list_timers() if t.kind == "schedule"]
            return bool(timers) and timers[0].data["at"] > first_at + 60

        await wait_until(handled, timeout=10)
        await _overdue(app, name, late=0.5)  # the next occurrence while the first run is busy
        if overlap == "replace":
            await wait_until(lambda: _count_fires(app, name, 2), timeout=10)
            assert (await app.wait(first["run_ids"][0], timeout=10))["status"] == "canceled"
        else:

            async def held() -> bool:
                timers = await app.backend.list_timers()
                return any(t.kind == "schedule" and t.data.get("queued") for t in timers)

            await wait_until(held, timeout=10)
            assert len(await app.triggers.fires(name)) == 1  # held while the first runs
            release.set()
            await wait_until(lambda: _count_fires(app, name, 2), timeout=10)
        release.set()
        fires = await app.triggers.fires(name)
    assert all(f["run_ids"] for f in fires) and not any(f["skipped"] for f in fires)


async def _count_fires(app: Any, name: str, n: int) -> bool:
    return len(await app.triggers.fires(name)) >= n
