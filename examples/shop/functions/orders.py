"""An order flow: fan-out after acceptance, fan-in before shipping, a flaky step that
succeeds on its third attempt, an optional step, a plain ``def`` step, a Node.js step
(``label.mjs``), and a standalone e-mail function."""

from __future__ import annotations

from pydantic import BaseModel, Field

from flowtide import Backoff, Context, Flow, function


class Item(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    price: float = Field(ge=0)


class Order(BaseModel):
    id: int
    email: str
    items: list[Item] = Field(min_length=1)


orders = Flow("orders", description="Accept, charge, reserve and ship an order")


@orders.entry(emits=["order.accepted"])
async def accept(order: Order, ctx: Context) -> dict[str, object]:
    total = sum(item.quantity * item.price for item in order.items)
    await ctx.state.set("order", order.model_dump())
    ctx.log.info("order accepted", order_id=order.id, total=total)
    await ctx.emit("order.accepted", {"order_id": order.id, "total": total})
    return {"order_id": order.id, "total": total}


@orders.step(
    subscribes=["order.accepted"],
    emits=["order.charged"],
    queue="payments",
    retries=3,
    backoff=Backoff.exponential("200ms", max="2s"),
    timeout="30s",
)
async def charge(event: dict[str, object], ctx: Context) -> dict[str, object]:
    # The payment provider is flaky: the first two attempts fail, the third succeeds.
    if ctx.attempt < 3:
        raise ConnectionError(f"payment provider timed out (attempt {ctx.attempt})")
    await ctx.emit("order.charged", {"order_id": event["order_id"]})
    return {"charged": event["total"], "attempts": ctx.attempt}


@orders.step(subscribes=["order.accepted"], emits=["stock.reserved"])
def reserve(event: dict[str, object], ctx: Context) -> dict[str, object]:
    # A plain def step: it runs in a thread, and ctx calls are ordinary blocking calls.
    order = ctx.state.get("order")
    skus = [item["sku"] for item in order["items"]]
    ctx.emit("stock.reserved", {"skus": skus})
    return {"reserved": skus}


@orders.step(subscribes=["order.accepted"], optional=True)
async def recommend(event: dict[str, object], ctx: Context) -> None:
    # Optional: its failure is recorded but does not fail the order.
    raise RuntimeError("the recommendation service is down")


@orders.step(subscribes=["order.charged", "stock.reserved"], emits=["order.shipped"])
async def ship(inputs: dict[str, dict[str, object]], ctx: Context) -> dict[str, object]:
    order = await ctx.state.get("order")
    await ctx.emit("order.shipped", {"order_id": order["id"]})
    return {"tracking": f"TRACK-{order['id']}", "skus": inputs["stock.reserved"]["skus"]}


@orders.step(subscribes=["order.shipped"])
async def notify(shipped: dict[str, object], ctx: Context) -> dict[str, object]:
    order = await ctx.state.get("order")
    job_id = await ctx.flows.start("receipt", {"email": order["email"], "order_id": order["id"]})
    return {"receipt_run": job_id}


# A step whose handler is JavaScript, run in a pooled Node.js child process (DESIGN A7).
orders.step("label", runtime="node", handler="label.mjs", subscribes=["order.shipped"])


receipt = Flow("receipt", description="Send a receipt by e-mail")


@receipt.entry()
async def send_receipt(data: dict[str, object], ctx: Context) -> dict[str, object]:
    ctx.log.info("sending receipt", to=data["email"])
    return {"sent_to": data["email"]}


class Email(BaseModel):
    to: str
    subject: str
    body: str = ""


@function(queue="emails", retries=5)
async def send_email(mail: Email, ctx: Context) -> dict[str, str]:
    """A standalone queue function: `flowtide` can enqueue it without any flow."""
    ctx.log.info("sending e-mail", to=mail.to, subject=mail.subject)
    return {"sent_to": mail.to}
