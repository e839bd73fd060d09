"""The app the end-to-end tests run under a real ``flowtide dev``: written into a tmp dir."""

SOURCE = '''
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from flowtide import Context, Flow, awaits, function, triggers

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


class Address(BaseModel):
    city: str = Field(description="where the refund is sent")
    postcode: str | None = None


class RefundRequest(BaseModel):
    """A refund started by a person from the dashboard (the manual trigger's form)."""

    order_id: int = Field(ge=1)
    amount: float = Field(gt=0, description="in euros")
    reason: Literal["damaged", "late", "other"] = "other"
    express: bool = False
    address: Address
    tags: list[str] = []


refunds = Flow("refunds", description="A refund a person starts from the dashboard")


@refunds.entry(emits=["refund.requested"], triggers=[triggers.manual(schema=RefundRequest)])
async def request_refund(refund: RefundRequest, ctx: Context) -> dict[str, Any]:
    ctx.log.info("refund requested", order_id=refund.order_id, amount=refund.amount)
    await ctx.emit("refund.requested", refund.model_dump())
    return {"order_id": refund.order_id}


@refunds.step(subscribes=["refund.requested"])
async def pay_refund(refund: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await gate(f"gate-refund-{refund['order_id']}")
    return {"refunded": refund["amount"], "to": refund["address"]["city"]}


class Approval(BaseModel):
    approved: bool
    by: str


expenses = Flow("expenses", description="An expense paid once a person approves it")


@expenses.entry(emits=["expense.submitted"])
async def submit_expense(expense: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await ctx.emit("expense.submitted", expense)
    return expense


@expenses.step(
    subscribes=["expense.submitted"],
    await_before=awaits.webhook(schema=Approval, timeout="1h"),
)
async def reimburse(expense: dict[str, Any], ctx: Context) -> dict[str, Any]:
    approval = Approval.model_validate(ctx.awaited)
    return {"paid": expense.get("amount") if approval.approved else 0, "approved_by": approval.by}


welcome = Flow("welcome", description="Greets a user who signed up")


@welcome.entry(triggers=[triggers.event("user.signed_up")])
async def greet(user: dict[str, Any], ctx: Context) -> str:
    return f"hello {user.get('name', 'there')}"


cleanup = Flow("cleanup", description="Housekeeping on schedules")


@cleanup.entry(
    triggers=[
        triggers.schedule(every="1h"),
        triggers.schedule("0 9 * * 1-5", tz="Europe/Berlin", name="cleanup.weekdays"),
    ]
)
async def sweep(occurrence: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"swept_for": occurrence.get("scheduled_at")}


@function(queue="emails")
async def send_email(mail: dict[str, Any], ctx: Context) -> dict[str, Any]:
    if not Path("emails-ok").exists():
        raise ConnectionError("smtp server unreachable")
    return {"sent_to": mail["to"]}
'''
