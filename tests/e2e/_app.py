"""The app the end-to-end tests run under a real ``flowtide dev``: written into a tmp dir."""

SOURCE = '''
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from flowtide import Context, Flow, function

orders = Flow("orders", description="Accept, charge, reserve and ship an order")


async def gate(name: str | None) -> None:
    """Wait (at most 30 s) until the test creates the file ``name`` in the app directory."""
    if not name:
        return
    for _ in range(600):
        if Path(name).exists():
            return
        await asyncio.sleep(0.05)


@orders.entry(emits=["order.accepted"])
async def accept(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await ctx.state.set("stage", "accepted")
    await ctx.state.set("order", order)
    ctx.log.info("order accepted", order_id=order.get("id"))
    await ctx.emit("order.accepted", {"order_id": order.get("id"), "gate": order.get("gate")})
    return {"order_id": order.get("id")}


@orders.step(subscribes=["order.accepted"], emits=["order.charged"], queue="payments", retries=1)
async def charge(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ctx.log.info("charging", order_id=event["order_id"])
    await gate(event.get("gate"))
    await ctx.state.set("stage", "charged")
    await ctx.emit("order.charged", {"order_id": event["order_id"]})
    return {"charged": True}


@orders.step(subscribes=["order.accepted"], emits=["stock.reserved"])
async def reserve(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ctx.log.debug("reserving stock")
    await ctx.emit("stock.reserved", {"skus": ["A1"]})
    return {"reserved": ["A1"]}


@orders.step(subscribes=["order.charged", "stock.reserved"])
async def ship(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await ctx.state.set("stage", "shipped")
    ctx.log.warning("shipping by slow boat")
    return {"tracking": "TRACK-1"}


broken = Flow("broken", description="Always fails in its second step")


@broken.entry(emits=["go"])
async def begin(data: Any, ctx: Context) -> None:
    await ctx.emit("go", {})


@broken.step(subscribes=["go"])
async def explode(event: Any, ctx: Context) -> None:
    ctx.log.error("about to fail")
    raise RuntimeError("boom")


tiny = Flow("tiny", description="One step")


@tiny.entry()
async def only(data: Any, ctx: Context) -> int:
    return 1


chatty = Flow("chatty", description="Logs a lot")


@chatty.entry()
async def talk(data: dict[str, Any], ctx: Context) -> int:
    for i in range(int(data["lines"])):
        ctx.log.info("line", i=i)
    return int(data["lines"])


@function(queue="emails")
async def send_email(mail: dict[str, Any], ctx: Context) -> dict[str, Any]:
    if not Path("emails-ok").exists():
        raise ConnectionError("smtp server unreachable")
    return {"sent_to": mail["to"]}
'''
