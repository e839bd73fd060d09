"""Definitions: what the decorators build, and every load-time DefinitionError of DESIGN A2.

Each DefinitionError must name the file, the flow and the step (the step where there is one).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowtide import Backoff, Context, DefinitionError, Flow, awaits, function, triggers
from flowtide.definitions.flow import FunctionDef, StepDef
from flowtide.registry import analyze

THIS_FILE = __file__


def h(event, ctx):
    return event


def expect_error(flow: Flow, step: str | None, *fragments: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        analyze(flow)
    err = info.value
    message = str(err)
    assert THIS_FILE in message, message
    assert f"flow {flow.name!r}" in message, message
    if step is not None:
        assert f"step {step!r}" in message, message
    assert (err.file, err.flow, err.step) == (THIS_FILE, flow.name, step)
    for fragment in fragments:
        assert fragment in message, message
    return err


def entry_only(name: str = "f", **options) -> Flow:
    flow = Flow(name)
    flow.entry("start", emits=["go"], **options)(h)
    return flow


# -- what the decorators build ---------------------------------------------------------------------


def test_step_decorator_returns_a_callable_step_def():
    flow = Flow("orders", description="d")

    @flow.entry(emits="order.accepted")
    async def accept(order, ctx):
        return {"accepted": order}

    @flow.step(
        subscribes="order.accepted",
        queue="payments",
        retries=3,
        backoff=Backoff.fixed("1s"),
        timeout="30s",
        concurrency=2,
        priority=5,
        optional=True,
    )
    def charge(event, ctx):
        return event["x"] * 2

    assert isinstance(accept, StepDef) and isinstance(charge, StepDef)
    assert [s.name for s in flow.steps] == ["accept", "charge"]
    assert accept.entry and not charge.entry
    assert accept.emits == ("order.accepted",) and charge.subscribes == ("order.accepted",)
    assert accept.options.queue == "orders"  # default queue: the flow's name
    assert accept.is_async and not charge.is_async
    assert charge(({"x": 21}), None) == 42  # still callable as a plain function
    opts = charge.options
    assert (opts.queue, opts.retries, opts.timeout, opts.concurrency, opts.priority) == (
        "payments",
        3,
        30.0,
        2,
        5,
    )
    assert opts.backoff == Backoff.fixed("1s")
    assert charge.optional
    assert charge.source.file == THIS_FILE and charge.source.line > 0
    assert accept.flow == "orders"


def test_flow_queue_is_the_default_queue():
    flow = Flow("f", queue="shared")
    step = flow.entry()(h)
    assert step.options.queue == "shared"


def test_named_step_with_timedelta_timeout():
    flow = Flow("f")
    step = flow.entry("begin", timeout=timedelta(minutes=1))(h)
    assert (step.name, step.options.timeout) == ("begin", 60.0)


def test_node_step_declared_by_a_call():
    flow = Flow("f")
    flow.entry(emits=["go"])(h)
    step = flow.step("resize", runtime="node", handler="functions/resize.mjs", subscribes=["go"])
    assert isinstance(step, StepDef)
    assert (step.handler, step.handler_path, step.options.runtime) == (
        None,
        "functions/resize.mjs",
        "node",
    )
    assert step.source.file == THIS_FILE
    analyze(flow)
    with pytest.raises(TypeError, match="no Python handler"):
        step(1, None)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"retries": -1}, "retries"), ({"concurrency": 0}, "concurrency"), ({"timeout": "x"}, "x")],
)
def test_invalid_step_options_raise_at_declaration(options, message):
    flow = Flow("f")
    with pytest.raises(ValueError, match=message):
        flow.entry(**options)(h)


def test_unknown_step_option_names_file_flow_and_step():
    flow = Flow("f")
    with pytest.raises(TypeError) as info:
        flow.entry("start", retry=3)(h)
    message = str(info.value)
    assert THIS_FILE in message and "'f'" in message and "'start'" in message and "retry" in message


def test_flow_needs_a_name():
    with pytest.raises(ValueError):
        Flow("")


def test_function_decorator_forms():
    @function
    def plain(x, ctx):
        return x

    @function(queue="emails", retries=5, timeout="10s")
    async def send_email(mail, ctx):
        return None

    node = function("thumbnail", runtime="node", handler="functions/thumb.mjs", queue="images")

    assert isinstance(plain, FunctionDef) and plain.name == "plain"
    assert plain.options.queue == "plain"  # default queue: the function's name
    assert plain(3, None) == 3
    assert (send_email.name, send_email.options.queue, send_email.options.retries) == (
        "send_email",
        "emails",
        5,
    )
    assert send_email.options.timeout == 10.0 and send_email.is_async
    assert (node.name, node.handler_path, node.options.queue) == (
        "thumbnail",
        "functions/thumb.mjs",
        "images",
    )
    assert function("renamed")(h).name == "renamed"


def test_trigger_names():
    assert triggers.event("user.signed_up").resolved_name("f") == "user.signed_up"
    assert triggers.webhook("orders-in").resolved_name("f") == "orders-in"
    assert triggers.schedule("0 9 * * *").resolved_name("f") == "f.schedule"
    assert triggers.schedule(every="30s", name="tick").resolved_name("f") == "tick"
    assert triggers.manual().resolved_name("f") == "f.manual"
    assert triggers.schedule(every="30s").options["every"] == 30.0
    assert triggers.webhook("w", method="put").options["method"] == "PUT"
    assert triggers.webhook("w", mode="manual").mode == "manual"


@pytest.mark.parametrize("kwargs", [{}, {"cron": "* * * * *", "every": "1m"}])
def test_schedule_needs_exactly_one_of_cron_and_every(kwargs):
    with pytest.raises(ValueError, match="exactly one"):
        triggers.schedule(**kwargs)


def test_await_declarations():
    assert awaits.time("10m").options == {"seconds": 600.0}
    until = awaits.until("0 9 * * 1-5", tz="Europe/Berlin")
    assert until.options == {"cron": "0 9 * * 1-5", "tz": "Europe/Berlin"}
    ev = awaits.event("payment.settled", match={"order_id": "input.order_id"}, timeout="24h")
    assert (ev.type, ev.timeout, ev.on_timeout) == ("event", 86400.0, "fail")
    assert ev.options["match"] == {"order_id": "input.order_id"}
    hook = awaits.webhook(timeout="1h", on_timeout="continue")
    assert (hook.type, hook.timeout, hook.on_timeout, hook.options) == (
        "webhook",
        3600.0,
        "continue",
        {"method": "POST"},
    )


# -- load-time errors (DESIGN A2) ------------------------------------------------------------------


def test_a_valid_flow_passes():
    flow = entry_only()
    flow.step("next", subscribes=["go"])(h)
    assert set(analyze(flow).steps) == {"start", "next"}


def test_unknown_event_token():
    flow = entry_only()
    flow.step("b", subscribes=["go", "nobody.emits.this"])(h)
    expect_error(flow, "b", "unknown subscription token", "'nobody.emits.this'")


def test_unknown_step_token():
    flow = entry_only()
    flow.step("b", subscribes=["step:ghost"])(h)
    expect_error(flow, "b", "'step:ghost'", "no such step")


def test_no_entry():
    flow = Flow("f")
    flow.step("a", subscribes=["x"], emits=["x"])(h)
    expect_error(flow, None, "no entry step")


def test_an_empty_flow_has_no_entry():
    expect_error(Flow("empty"), None, "no entry step")


def test_two_entries():
    flow = Flow("f")
    flow.entry("first")(h)
    flow.entry("second")(h)
    expect_error(flow, "second", "two entry steps", "'first'", "'second'")


def test_duplicate_step_name():
    flow = entry_only()
    flow.step("b", subscribes=["go"])(h)
    flow.step("b", subscribes=["step:start"])(h)
    expect_error(flow, "b", "duplicate step name")


def test_a_step_name_may_not_repeat_the_entry():
    flow = entry_only()
    flow.step("start", subscribes=["go"])(h)
    expect_error(flow, "start", "duplicate step name")


def test_non_entry_step_without_subscriptions():
    flow = entry_only()
    flow.step("b", subscribes=[])(h)
    expect_error(flow, "b", "subscribes")


@pytest.mark.parametrize(
    ("wiring", "bad"),
    [
        # b and c wait for each other
        ({"b": (["y"], ["x"]), "c": (["x"], ["y"])}, {"b", "c"}),
        # b only starts on its own emit
        ({"b": (["x"], ["x"])}, {"b"}),
        # b waits for its own completion
        ({"b": (["step:b"], [])}, {"b"}),
        # d fans in on go and on an event only a never-started step emits
        ({"b": (["y"], ["x"]), "c": (["x"], ["y"]), "d": (["go", "y"], [])}, {"b", "c", "d"}),
    ],
)
def test_a_step_no_emit_can_ever_start(wiring, bad):
    flow = entry_only()
    for name, (subscribes, emits) in wiring.items():
        flow.step(name, subscribes=subscribes, emits=emits)(h)
    with pytest.raises(DefinitionError) as info:
        analyze(flow)
    assert info.value.step in bad
    assert "no emit can ever start this step" in str(info.value)
    assert THIS_FILE in str(info.value) and "flow 'f'" in str(info.value)


@pytest.mark.parametrize("position", ["await_before", "await_after"])
@pytest.mark.parametrize(
    ("declaration", "fragment"),
    [
        ("10m", "must be an awaits.time/until/event/webhook declaration"),
        (awaits.webhook(on_timeout="retry"), "needs max_retries >= 1"),
        (awaits.event("paid", on_timeout="explode"), "invalid on_timeout 'explode'"),
        (awaits.event(""), "needs an event name"),
        (awaits.until("61 * * * *"), "invalid cron expression '61 * * * *'"),
        (awaits.until("0 9 * * *", tz="Mars/Olympus"), "invalid time zone 'Mars/Olympus'"),
    ],
)
def test_misconfigured_awaits(position, declaration, fragment):
    flow = entry_only()
    flow.step("b", subscribes=["go"], **{position: declaration})(h)
    err = expect_error(flow, "b", fragment)
    if "cron" not in fragment and "time zone" not in fragment:
        assert position in str(err)


def test_well_configured_awaits_pass():
    flow = entry_only()
    flow.step(
        "b",
        subscribes=["go"],
        await_before=awaits.webhook(timeout="1h", on_timeout="retry", max_retries=2),
        await_after=awaits.until("0 9 * * 1-5", tz="Europe/Berlin"),
    )(h)
    analyze(flow)


@pytest.mark.parametrize(
    ("trigger", "fragment"),
    [
        (triggers.schedule("not a cron"), "invalid cron expression 'not a cron'"),
        (triggers.schedule("0 25 * * *"), "invalid cron expression"),
        (triggers.schedule("0 9 * * *", tz="Europe/Atlantis"), "invalid time zone"),
        (triggers.schedule(every="30s", tz="Nowhere/Nope"), "invalid time zone 'Nowhere/Nope'"),
        ("webhook", "triggers must be triggers.* declarations"),
    ],
)
def test_invalid_triggers(trigger, fragment):
    flow = Flow("f")
    flow.entry("start", triggers=[trigger])(h)
    expect_error(flow, "start", fragment)


def test_valid_triggers_pass():
    flow = Flow("f")
    flow.entry(
        "start",
        triggers=[
            triggers.schedule("*/5 * * * *", tz="Europe/Berlin"),
            triggers.schedule(every="30s", name="tick"),
            triggers.webhook("in", auth=triggers.stripe("STRIPE_SECRET")),
            triggers.event("user.signed_up"),
            triggers.manual(),
        ],
    )(h)
    analyze(flow)


def test_node_step_without_a_js_handler():
    flow = entry_only()
    flow.step("b", runtime="node", handler="functions/resize.py", subscribes=["go"])
    expect_error(flow, "b", "node step needs handler=")


def test_unknown_runtime():
    flow = Flow("f")
    flow.entry("start", runtime="ruby")(h)
    expect_error(flow, "start", "unknown runtime 'ruby'")


def test_context_as_the_first_parameter():
    flow = Flow("f")

    @flow.entry()
    def start(ctx: Context, event: dict) -> None: ...

    expect_error(flow, "start", "the first parameter is the input")


def test_unresolvable_annotation():
    flow = Flow("f")

    @flow.entry()
    def start(event: NoSuchType, ctx) -> None:  # noqa: F821
        ...

    expect_error(flow, "start", "cannot resolve type annotations")
