"""Load-time validation of definitions for other runtimes: the handler must exist."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flowtide import Flow, function
from flowtide.registry import DefinitionError, Registry
from tests.runtimes import _handlers

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _flow(handler: str) -> Flow:
    flow = Flow("media")

    @flow.entry(emits=["go"])
    async def begin(x: Any, ctx: Any) -> None: ...

    flow.step("resize", runtime="node", handler=handler, subscribes=["go"])
    return flow


def test_a_missing_node_file_is_a_load_error_naming_flow_and_step(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        Registry().add(_flow(str(tmp_path / "nope.mjs")))
    message = str(info.value)
    assert "not found" in message and "nope.mjs" in message
    assert "flow 'media'" in message and "step 'resize'" in message
    assert __file__ in message


@needs_node
@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("export const resize = () => 1;\n", "no default export function"),
        ("export default 42;\n", "no default export function"),
        ("export default (\n", "SyntaxError|Unexpected"),
    ],
)
def test_a_node_file_without_a_default_export_is_a_load_error(
    tmp_path: Path, source: str, problem: str
) -> None:
    (tmp_path / "bad.mjs").write_text(source)
    with pytest.raises(DefinitionError, match=problem):
        Registry().add(function("thumb", runtime="node", handler=str(tmp_path / "bad.mjs")))


@needs_node
def test_a_relative_node_path_resolves_next_to_the_declaring_file(tmp_path: Path) -> None:
    (tmp_path / "rel.mjs").write_text("export default async (x) => x;\n")
    fn = function("rel", runtime="node", handler="rel.mjs")
    fn.source.file = str(tmp_path / "defs.py")  # as if declared in a module next to rel.mjs
    Registry().add(fn)
    assert fn.handler_path == str((tmp_path / "rel.mjs").resolve())


def test_a_python_process_handler_must_be_importable_by_name() -> None:
    @function(runtime="python-process")
    def local(x: Any) -> Any:
        return x

    with pytest.raises(DefinitionError, match="importable"):
        Registry().add(local)
    Registry().add(_handlers.noop)
    Registry().add(_handlers.procs)
