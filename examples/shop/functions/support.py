"""Triggers and awaits: a refund that waits for a person's approval (a webhook await with a
timeout), a review request sent a while after shipping (a time await), and a daily report
on a cron schedule in a time zone."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flowtide import Context, Flow, awaits, triggers


class RefundRequest(BaseModel):
    order_id: int
    amount: float = Field(gt=0)
    reason: Literal["damaged", "late", "other"] = "other"


class Approval(BaseModel):
    approved: bool
    by: str


refunds = Flow("refunds", description="Refund an order once a person approves it")


@refunds.entry(
    emits=["refund.requested"],
    triggers=[triggers.manual(schema=RefundRequest), triggers.webhook("refund-requests")],
)
async def request(refund: RefundRequest, ctx: Context) -> dict[str, object]:
    await ctx.state.set("refund", refund.model_dump())
    await ctx.emit("refund.requested", refund.model_dump())
    return refund.model_dump()


def mail_approver(info: dict[str, object]) -> None:
    # A real app would e-mail this link; the URL resolves the await when called.
    print(f"approve refund of run {info['run_id']}: POST {info['url']}")


@refunds.step(
    subscribes=["refund.requested"],
    await_before=awaits.webhook(schema=Approval, timeout="24h", on_timeout="fail"),
    on_register=mail_approver,
)
async def pay_out(refund: dict[str, object], ctx: Context) -> dict[str, object]:
    approval = Approval.model_validate(ctx.awaited)
    if not approval.approved:
        ctx.log.warning("refund declined", by=approval.by)
        return {"refunded": 0, "declined_by": approval.by}
    ctx.log.info("refund paid", amount=refund["amount"], approved_by=approval.by)
    return {"refunded": refund["amount"], "approved_by": approval.by}


follow_up = Flow("follow_up", description="Ask for a review a minute after an order shipped")


@follow_up.entry(triggers=[triggers.event("order.shipped", from_emits=True)])
async def note_shipment(shipped: dict[str, object], ctx: Context) -> dict[str, object]:
    return shipped


@follow_up.step(subscribes=["step:note_shipment"], await_before=awaits.time("1m"))
async def ask_for_review(shipped: dict[str, object], ctx: Context) -> dict[str, object]:
    ctx.log.info("asking for a review", order_id=shipped["order_id"])
    return {"review_requested_for": shipped["order_id"]}


reports = Flow("reports", description="A daily sales report at 09:00 Berlin time")


@reports.entry(triggers=[triggers.schedule("0 9 * * *", tz="Europe/Berlin")])
async def daily_report(occurrence: dict[str, object], ctx: Context) -> dict[str, object]:
    return {"report_for": occurrence["scheduled_at"]}
