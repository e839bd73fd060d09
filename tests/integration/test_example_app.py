"""The bundled example app (what `make run` serves) works end to end on the memory backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowtide import App, Config
from flowtide.app import load_registry
from flowtide.engine.scheduler import Scheduler
from flowtide.engine.schedules import ScheduleService
from flowtide.engine.worker import Worker

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


async def test_orders_refund_approval_and_follow_up(wait_until: Any) -> None:
    import asyncio

    config = Config(backend="memory://", app=["functions"], root=SHOP)
    config.worker.poll_interval = 0.01
    async with App(config, registry=load_registry(config)) as app:
        worker = Worker(app.service)
        timers = Scheduler(app.service, 0.05, app.trigger_service)
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(timers.run())]
        try:
            order = {
                "id": 1,
                "email": "a@example.com",
                "items": [{"sku": "x", "quantity": 1, "price": 2.5}],
            }
            run_id = await app.start("orders", order)
            assert (await app.wait(run_id, timeout=30))["status"] == "completed"

            async def follow_up_awaits() -> list[dict[str, Any]]:
                items, _ = await app.await_service.list_pending(50)
                return [a for a in items if a["flow"] == "follow_up"]

            await wait_until(follow_up_awaits, timeout=10)
            (pending,) = await follow_up_awaits()
            assert pending["type"] == "time" and pending["step"] == "ask_for_review"

            fire = await app.triggers.fire("refunds.manual", {"order_id": 1, "amount": 5})
            (refund_run,) = fire["run_ids"]

            async def refund_await() -> list[dict[str, Any]]:
                items, _ = await app.await_service.list_pending(50)
                return [a for a in items if a["run_id"] == refund_run]

            await wait_until(refund_await, timeout=10)
            (approval,) = await refund_await()
            assert approval["url"].startswith(config.base_url + "/hooks/await/")
            await app.resolve(approval["await_id"], {"approved": True, "by": "ann"})
            view = await app.wait(refund_run, timeout=10)
            assert view["result"] == {"refunded": 5.0, "approved_by": "ann"}
            (schedule,) = await ScheduleService(app.trigger_service).list()
            assert schedule["name"] == "reports.schedule" and schedule["tz"] == "Europe/Berlin"
        finally:
            worker.stop()
            timers.stop()
            await asyncio.gather(*tasks)
