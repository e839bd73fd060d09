"""Registry: discovery from directories, files and import paths; graph analysis of flows."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from flowtide import DefinitionError, Flow, function, triggers
from flowtide.registry import Registry, analyze, discover


def h(event, ctx):
    return event


@pytest.fixture
def isolated_imports(tmp_path):
    """Undo what discovery does to sys.path, and forget the modules imported from tmp_path."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    ours = []
    for name, module in list(sys.modules.items()):
        locations = [getattr(module, "__file__", None) or "", *getattr(module, "__path__", [])]
        if any(str(loc).startswith(str(tmp_path)) for loc in locations):
            ours.append(name)
    for name in ours:
        del sys.modules[name]


@pytest.fixture
def pkg(tmp_path, isolated_imports):
    """A uniquely named package directory in tmp_path (module caches never collide)."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    root = tmp_path / name
    root.mkdir()
    return root


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


ORDERS = """
    from flowtide import Flow, function

    orders = Flow("orders")

    @orders.entry(emits=["order.accepted"])
    def accept(order, ctx):
        return order

    @orders.step(subscribes=["order.accepted"])
    def charge(event, ctx):
        return event

    @function(queue="emails")
    def send_email(mail, ctx):
        return None
"""


# -- discovery -------------------------------------------------------------------------------------


def test_discover_a_directory(pkg):
    write(pkg / "orders.py", ORDERS)
    write(
        pkg / "sub" / "billing.py",
        """
        from flowtide import Flow
        billing = Flow("billing")
        @billing.entry()
        def bill(x, ctx):
            return x
    """,
    )
    write(pkg / "_private.py", "raise RuntimeError('underscore modules are skipped')\n")
    registry = discover([pkg.name], root=pkg.parent)
    assert set(registry.flows) == {"orders", "billing"}
    assert set(registry.functions) == {"send_email"}
    assert f"{pkg.name}.orders" in registry.modules
    assert f"{pkg.name}.sub.billing" in registry.modules
    assert registry.flows["orders"].entry.name == "accept"
    assert registry.queues() == {"orders": None, "billing": None, "emails": None}


def test_discover_an_absolute_directory_and_a_single_file(pkg):
    write(pkg / "orders.py", ORDERS)
    assert set(discover([str(pkg)]).flows) == {"orders"}
    single = write(pkg.parent / f"{pkg.name}_single.py", ORDERS)
    assert set(discover([str(single)]).flows) == {"orders"}


def test_discover_an_import_path(tmp_path, isolated_imports):
    name = f"mod_{uuid.uuid4().hex[:10]}"
    write(tmp_path / f"{name}.py", ORDERS)
    sys.path.insert(0, str(tmp_path))
    registry = discover([name])
    assert set(registry.flows) == {"orders"} and set(registry.functions) == {"send_email"}
    assert registry.modules == [name]


def test_steps_of_one_flow_split_across_two_modules(pkg):
    write(pkg / "__init__.py", "")
    write(
        pkg / "a_flow.py",
        """
        from flowtide import Flow
        shop = Flow("shop")

        @shop.entry(emits=["order.placed"])
        def place(order, ctx):
            return order
    """,
    )
    write(
        pkg / "b_steps.py",
        f"""
        from {pkg.name}.a_flow import shop

        @shop.step(subscribes=["order.placed"], emits=["order.shipped"])
        def pack(event, ctx):
            return event

        @shop.step(subscribes=["step:pack", "order.shipped"])
        def notify(event, ctx):
            return event
    """,
    )
    registry = discover([pkg.name], root=pkg.parent)
    graph = registry.flows["shop"]
    assert list(graph.steps) == ["place", "pack", "notify"]
    assert graph.levels == {"place": 0, "pack": 1, "notify": 2}
    assert graph.steps["pack"].source.file.endswith("b_steps.py")


def test_the_same_flow_imported_twice_is_one_flow(pkg):
    write(pkg / "__init__.py", "")
    write(pkg / "defs.py", ORDERS)
    write(pkg / "again.py", f"from {pkg.name}.defs import orders, send_email\n")
    registry = discover([pkg.name], root=pkg.parent)
    assert set(registry.flows) == {"orders"}


def test_a_definition_error_names_the_module_file(pkg):
    bad = write(
        pkg / "broken.py",
        """
        from flowtide import Flow
        f = Flow("broken")

        @f.entry()
        def start(x, ctx):
            return x

        @f.step(subscribes=["never.emitted"])
        def orphan(x, ctx):
            return x
    """,
    )
    with pytest.raises(DefinitionError) as info:
        discover([pkg.name], root=pkg.parent)
    message = str(info.value)
    assert str(bad) in message
    assert "flow 'broken'" in message and "step 'orphan'" in message
    assert "'never.emitted'" in message


def test_a_module_that_fails_to_import_is_a_definition_error(pkg):
    write(pkg / "boom.py", "x = 1\nraise RuntimeError('kaput')\n")
    with pytest.raises(DefinitionError) as info:
        discover([pkg.name], root=pkg.parent)
    assert "kaput" in str(info.value) and f"{pkg.name}.boom" in str(info.value)


def test_a_syntax_error_names_the_file(pkg):
    bad = write(pkg / "syntax.py", "def broken(:\n")
    with pytest.raises(DefinitionError) as info:
        discover([pkg.name], root=pkg.parent)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("entry", ["does/not/exist", "missing.py"])
def test_a_missing_path_is_a_definition_error(tmp_path, entry):
    with pytest.raises(DefinitionError, match="does not exist"):
        discover([entry], root=tmp_path)


def test_an_unknown_import_path_is_a_definition_error(isolated_imports):
    with pytest.raises(DefinitionError, match="cannot import app module"):
        discover([f"no_such_module_{uuid.uuid4().hex}"])


def test_a_missing_dependency_inside_a_module_is_reported_as_such(pkg):
    write(pkg / "needs.py", "import no_such_dependency_xyz\n")
    with pytest.raises(DefinitionError, match="no_such_dependency_xyz") as info:
        discover([pkg.name], root=pkg.parent)
    assert "error importing" in str(info.value)


def test_two_flows_with_one_name(pkg):
    write(pkg / "one.py", ORDERS)
    write(pkg / "two.py", ORDERS)
    with pytest.raises(DefinitionError, match="duplicate flow name") as info:
        discover([pkg.name], root=pkg.parent)
    assert "flow 'orders'" in str(info.value)


def test_two_functions_with_one_name():
    registry = Registry()
    registry.add(function("same")(h))
    with pytest.raises(DefinitionError, match="duplicate function name 'same'"):
        registry.add(function("same")(h))


def test_a_node_function_needs_a_js_handler():
    with pytest.raises(DefinitionError, match="node function"):
        Registry().add(function("thumb", runtime="node", handler="thumb.txt"))


# -- graph analysis --------------------------------------------------------------------------------


def diamond() -> Flow:
    """a -x-> b -y-> d ; a -step:a-> c -step:c-> d ; e fans out from x too."""
    flow = Flow("diamond")
    flow.entry("a", emits=["x"])(h)
    flow.step("b", subscribes=["x"], emits=["y"])(h)
    flow.step("c", subscribes=["step:a"])(h)
    flow.step("d", subscribes=["y", "step:c"])(h)
    flow.step("e", subscribes="x")(h)
    return flow


def test_levels_edges_sinks_of_a_small_graph():
    graph = analyze(diamond())
    assert graph.entry.name == "a"
    assert graph.levels == {"a": 0, "b": 1, "c": 1, "e": 1, "d": 2}
    assert sorted(graph.edges) == sorted(
        [
            ("a", "b", "x"),
            ("a", "c", "step:a"),
            ("b", "d", "y"),
            ("c", "d", "step:c"),
            ("a", "e", "x"),
        ]
    )
    assert graph.sinks == ["d", "e"]
    assert graph.subscribers == {"x": ["b", "e"], "step:a": ["c"], "y": ["d"], "step:c": ["d"]}
    described = graph.describe()
    assert described["levels"] == [["a"], ["b", "c", "e"], ["d"]]
    assert described["entry"] == "a"
    assert {"from": "c", "to": "d", "token": "step:c"} in described["edges"]
    assert [s["level"] for s in described["steps"]] == [0, 1, 1, 2, 1]


def test_step_subscription_tokens():
    flow = Flow("f")
    flow.entry("a")(h)
    flow.step("b", subscribes=["step:a"])(h)
    flow.step("c", subscribes=["step:a", "step:b"])(h)
    graph = analyze(flow)
    assert graph.levels == {"a": 0, "b": 1, "c": 2}
    assert ("a", "c", "step:a") in graph.edges and ("b", "c", "step:b") in graph.edges
    assert graph.sinks == ["c"]


def test_an_event_with_several_producers():
    flow = Flow("f")
    flow.entry("a", emits=["go", "late"])(h)
    flow.step("b", subscribes=["go"], emits=["done"])(h)
    flow.step("c", subscribes=["late"], emits=["done"])(h)
    flow.step("d", subscribes=["done"])(h)
    graph = analyze(flow)
    assert ("b", "d", "done") in graph.edges and ("c", "d", "done") in graph.edges
    assert graph.levels["d"] == 2
    assert graph.sinks == ["d"]


def test_level_uses_the_earliest_producer_of_each_token():
    flow = Flow("f")
    flow.entry("a", emits=["x"])(h)
    flow.step("b", subscribes=["x"], emits=["y"])(h)
    flow.step("c", subscribes=["y"], emits=["x"])(h)  # re-emits x: a's x is earlier
    flow.step("d", subscribes=["x"])(h)
    graph = analyze(flow)
    assert graph.levels == {"a": 0, "b": 1, "c": 2, "d": 1}


def test_a_single_step_flow():
    flow = Flow("one")
    flow.entry("only")(h)
    graph = analyze(flow)
    assert (graph.levels, graph.edges, graph.sinks) == ({"only": 0}, [], ["only"])


def test_stall_timeout_is_derived_from_timeouts_and_retries():
    flow = Flow("f")
    flow.entry("a", emits=["x"], timeout="10s", retries=2)(h)  # 30s
    flow.step("b", subscribes=["x"], timeout="1m")(h)  # level 1: max(60s, 20s)
    flow.step("c", subscribes=["x"], timeout="20s")(h)
    graph = analyze(flow)
    assert graph.stall_timeout == pytest.approx(30 + 60 + 300)
    big = Flow("big")
    big.entry("a", timeout="1h")(h)
    assert analyze(big).stall_timeout == pytest.approx(3600 + 360)


class Order(BaseModel):
    id: int


def test_input_models_come_from_annotations():
    flow = Flow("f")

    @flow.entry()
    def start(order: Order, ctx) -> None: ...

    @flow.step(subscribes=["step:start"])
    def after(event: dict) -> None: ...

    graph = analyze(flow)
    model = graph.inputs["start"]
    assert model.arity == 2 and model.adapter is not None
    assert model.adapter.validate_python({"id": "3"}) == Order(id=3)
    assert graph.inputs["after"].adapter is None and graph.inputs["after"].arity == 1


def test_event_subscribers():
    registry = Registry()
    flow = Flow("signup")
    flow.entry(triggers=[triggers.event("user.signed_up")])(h)
    other = Flow("quiet")
    other.entry(triggers=[triggers.event("user.signed_up", mode="manual")])(h)
    registry.add(flow)
    registry.add(other)
    assert registry.event_subscribers("user.signed_up") == ["signup"]
    assert registry.event_subscribers("nothing") == []


def test_two_apps_with_the_same_module_names_load_their_own_flows(tmp_path):
    from flowtide.registry import discover

    for name in ("first", "second"):
        root = tmp_path / name
        (root / "functions").mkdir(parents=True)
        (root / "functions" / "app.py").write_text(
            "from flowtide import Flow\n"
            f"flow = Flow({name!r})\n"
            "@flow.entry()\n"
            "async def go(_, ctx):\n"
            "    return 1\n"
        )
    assert list(discover(["functions"], tmp_path / "first").flows) == ["first"]
    assert list(discover(["functions"], tmp_path / "second").flows) == ["second"]
