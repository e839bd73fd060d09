"""Discovery and validation of definitions, and the analysis of each flow's graph.

Everything wrong with a definition is a :class:`DefinitionError` naming file, flow and step,
raised when the app loads, never later while a run is in flight.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic

from flowtide._util.cron import check_cron, zone
from flowtide.definitions.awaits import Await
from flowtide.definitions.flow import Flow, FunctionDef, StepDef
from flowtide.definitions.triggers import Trigger

__all__ = ["DefinitionError", "FlowGraph", "Registry", "discover"]

_RUNTIMES = ("python", "python-process", "node")
_NODE_SUFFIXES = (".mjs", ".js", ".cjs", ".ts")


class DefinitionError(Exception):
    """A definition problem found at load time."""

    def __init__(
        self, message: str, *, file: str = "", flow: str | None = None, step: str | None = None
    ) -> None:
        where = [file] if file else []
        if flow is not None:
            where.append(f"flow {flow!r}")
        if step is not None:
            where.append(f"step {step!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.file, self.flow, self.step = file, flow, step


@dataclass(slots=True)
class InputModel:
    """How a handler wants its input: validated by pydantic, and how many arguments it takes."""

    adapter: pydantic.TypeAdapter[Any] | None
    arity: int


def _input_model(handler: Any, where: dict[str, Any]) -> InputModel:
    if handler is None:
        return InputModel(None, 2)
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return InputModel(None, 2)
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    arity = min(len(positional), 2)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        arity = 2
    if not positional:
        return InputModel(None, arity)
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:
        raise DefinitionError(f"cannot resolve type annotations: {exc}", **where) from None
    annotation = hints.get(positional[0].name, Any)
    if annotation is Any or annotation is dict or annotation is object:
        return InputModel(None, arity)
    if getattr(annotation, "__name__", "") == "Context":
        raise DefinitionError("the first parameter is the input, the second the context", **where)
    try:
        return InputModel(pydantic.TypeAdapter(annotation), arity)
    except pydantic.PydanticSchemaGenerationError as exc:
        raise DefinitionError(f"input annotation cannot be validated: {exc}", **where) from None


@dataclass(slots=True)
class FlowGraph:
    """A validated flow with its analysis: edges, levels, reachable steps, sinks."""

    flow: Flow
    entry: StepDef
    steps: dict[str, StepDef]
    subscribers: dict[str, list[str]]
    edges: list[tuple[str, str, str]]
    levels: dict[str, int]
    sinks: list[str]
    inputs: dict[str, InputModel]
    stall_timeout: float = 0.0

    @property
    def name(self) -> str:
        return self.flow.name

    def describe(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/flows/{flow}``."""
        steps = []
        for step in self.steps.values():
            steps.append(
                {
                    "name": step.name,
                    "entry": step.entry,
                    "subscribes": list(step.subscribes),
                    "emits": list(step.emits),
                    "queue": step.options.queue,
                    "retries": step.options.retries,
                    "timeout": step.options.timeout,
                    "runtime": step.options.runtime,
                    "optional": step.optional,
                    "level": self.levels[step.name],
                    "await_before": _await_json(step.await_before),
                    "await_after": _await_json(step.await_after),
                }
            )
        return {
            "name": self.name,
            "description": self.flow.description,
            "entry": self.entry.name,
            "steps": steps,
            "edges": [{"from": a, "to": b, "token": t} for a, b, t in self.edges],
            "levels": _levels_list(self.levels),
            "sinks": self.sinks,
            "triggers": [_trigger_json(t, self.name) for t in self.entry.triggers],
            "awaits": [
                {"step": s.name, "position": pos, **(_await_json(a) or {})}
                for s in self.steps.values()
                for pos, a in (("before", s.await_before), ("after", s.await_after))
                if a is not None
            ],
            "stall_timeout": self.stall_timeout,
        }


def _levels_list(levels: dict[str, int]) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(max(levels.values(), default=-1) + 1)]
    for name, level in levels.items():
        out[level].append(name)
    return out


def _await_json(a: Await | None) -> dict[str, Any] | None:
    if a is None:
        return None
    out = {"type": a.type, **a.options, "timeout": a.timeout, "on_timeout": a.on_timeout}
    if a.schema is not None:
        import pydantic

        out["schema"] = pydantic.TypeAdapter(a.schema).json_schema()
    return out


def _trigger_json(t: Trigger, flow: str) -> dict[str, Any]:
    opts = {k: v for k, v in t.options.items() if k != "auth"}
    auth = t.options.get("auth")
    if auth is not None:
        opts["auth"] = auth.kind
    return {"name": t.resolved_name(flow), "type": t.type, "mode": t.mode, **opts}


def _check_cron(expr: str, tz: str, where: dict[str, Any]) -> None:
    try:
        check_cron(expr, tz)
    except ValueError as exc:
        raise DefinitionError(str(exc), **where) from None


def _check_await(a: Any, position: str, where: dict[str, Any]) -> None:
    if a is None:
        return
    if not isinstance(a, Await):
        raise DefinitionError(
            f"await_{position} must be an awaits.time/until/event/webhook declaration, got {a!r}",
            **where,
        )
    if a.on_timeout not in ("fail", "continue", "retry"):
        raise DefinitionError(f"await_{position}: invalid on_timeout {a.on_timeout!r}", **where)
    if a.on_timeout == "retry" and a.max_retries < 1:
        raise DefinitionError(
            f"await_{position}: on_timeout='retry' needs max_retries >= 1", **where
        )
    if a.type == "time" and not a.options.get("seconds", 0) > 0:
        raise DefinitionError(f"await_{position}: a time await needs a positive delay", **where)
    if a.timeout is not None and a.timeout <= 0:
        raise DefinitionError(f"await_{position}: the timeout must be positive", **where)
    if a.type == "until":
        _check_cron(a.options["cron"], a.options["tz"], where)
    if a.type == "event" and not a.options.get("name"):
        raise DefinitionError(f"await_{position}: an event await needs an event name", **where)


_NODE_CHECK = (
    'const {pathToFileURL} = await import("node:url"); try {'
    " const m = await import(pathToFileURL(process.argv[1]).href); let f = m.default;"
    ' if (typeof f !== "function" && f && typeof f.default === "function") f = f.default;'
    ' if (typeof f !== "function") { console.log("it has no default export function");'
    " process.exit(1); }"
    ' } catch (e) { console.log(String((e && e.message) || e).split("\\n")[0]); process.exit(1); }'
    " process.exit(0);"
)
_node_checked: dict[tuple[str, float], str] = {}


def _node_export_problem(path: Path) -> str:
    """Import the module once in a throwaway ``node`` (cached by file and mtime): '' if it has
    a default export function. Skipped ('') for .ts files and when node is not installed."""
    import shutil
    import subprocess

    node = shutil.which("node")
    key = (str(path), path.stat().st_mtime)
    if node is None or path.suffix == ".ts" or key in _node_checked:
        return _node_checked.get(key, "")
    cmd = [node, "--input-type=module", "-e", _NODE_CHECK, str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=15, cwd=path.parent)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    _node_checked[key] = "" if done.returncode == 0 else (done.stdout or done.stderr).strip()
    return _node_checked[key]


def _check_runtime(item: StepDef | FunctionDef, where: dict[str, Any]) -> None:
    runtime, kind = item.options.runtime, "step" if isinstance(item, StepDef) else "function"
    if runtime not in _RUNTIMES:
        raise DefinitionError(f"unknown runtime {runtime!r}; use one of {_RUNTIMES}", **where)
    if runtime == "node" and not (item.handler_path or "").endswith(_NODE_SUFFIXES):
        raise DefinitionError(f"a node {kind} needs handler='path/to/file.mjs'", **where)
    if runtime != "node" and item.handler is None:
        raise DefinitionError(f"a {runtime} {kind} needs a Python handler", **where)


def _check_handler(item: StepDef | FunctionDef, where: dict[str, Any]) -> None:
    """At load, a non-Python handler must exist: the node file and its default export, the
    python-process function importable by module and name (a child imports it that way)."""
    runtime = item.options.runtime
    if runtime == "node":
        declared = Path(item.source.file).parent
        path = Path(item.handler_path or "")
        tried = [path] if path.is_absolute() else [Path.cwd() / path, declared / path]
        found = next((p.resolve() for p in tried if p.is_file()), None)
        if found is None:
            looked = " or ".join(str(p) for p in tried)
            raise DefinitionError(
                f"handler file {item.handler_path!r} not found ({looked})", **where
            )
        problem = _node_export_problem(found)
        if problem:
            raise DefinitionError(f"handler file {str(found)!r}: {problem}", **where)
        item.handler_path = str(found)
    elif runtime == "python-process":
        fn = item.handler
        module, qualname = getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")
        target: Any = sys.modules.get(module)
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if module == "__main__" or target not in (fn, item):
            raise DefinitionError(
                f"a python-process handler must be importable as {module}:{qualname} "
                "(define it at module level, in a module other than __main__)",
                **where,
            )


def _check_step(step: StepDef, where: dict[str, Any]) -> None:
    _check_runtime(step, where)
    _check_await(step.await_before, "before", where)
    _check_await(step.await_after, "after", where)
    for trigger in step.triggers:
        if not isinstance(trigger, Trigger):
            raise DefinitionError(
                f"triggers must be triggers.* declarations, got {trigger!r}", **where
            )
        if trigger.type == "schedule" and trigger.options.get("cron"):
            _check_cron(trigger.options["cron"], trigger.options["tz"], where)
        elif trigger.type == "schedule":
            _check_tz(trigger.options["tz"], where)


def _check_tz(tz: str, where: dict[str, Any]) -> None:
    try:
        zone(tz)
    except ValueError as exc:
        raise DefinitionError(str(exc), **where) from None


def analyze(flow: Flow, step_timeout: float = 300.0) -> FlowGraph:
    """Validate one flow and compute its graph."""
    file = flow.source.file
    steps: dict[str, StepDef] = {}
    entries = [s for s in flow.steps if s.entry]
    if not entries:
        raise DefinitionError("the flow has no entry step (@flow.entry)", file=file, flow=flow.name)
    if len(entries) > 1:
        names = ", ".join(repr(s.name) for s in entries)
        raise DefinitionError(
            f"the flow has two entry steps ({names}); exactly one is allowed",
            file=entries[1].source.file,
            flow=flow.name,
            step=entries[1].name,
        )
    for step in flow.steps:
        where = {"file": step.source.file, "flow": flow.name, "step": step.name}
        if step.name in steps:
            raise DefinitionError("duplicate step name", **where)
        if not step.entry and not step.subscribes:
            raise DefinitionError("a non-entry step needs subscribes=[...]", **where)
        _check_step(step, where)
        steps[step.name] = step
    entry = entries[0]

    producers: dict[str, set[str]] = {}
    for step in steps.values():
        producers.setdefault(f"step:{step.name}", set()).add(step.name)
        for name in step.emits:
            producers.setdefault(name, set()).add(step.name)
    subscribers: dict[str, list[str]] = {}
    for step in steps.values():
        for token in step.subscribes:
            if token not in producers:
                hint = "no step emits it" if not token.startswith("step:") else "no such step"
                raise DefinitionError(
                    f"unknown subscription token {token!r}: {hint}",
                    file=step.source.file,
                    flow=flow.name,
                    step=step.name,
                )
            subscribers.setdefault(token, []).append(step.name)

    levels = _levels(entry, steps, producers)
    for step in steps.values():
        if step.name not in levels:
            raise DefinitionError(
                "no emit can ever start this step (its subscriptions are never all satisfied)",
                file=step.source.file,
                flow=flow.name,
                step=step.name,
            )
    edges = [
        (producer, step.name, token)
        for step in steps.values()
        for token in step.subscribes
        for producer in sorted(producers[token])
    ]
    has_dependents = {a for a, _, _ in edges}
    sinks = [name for name in steps if name not in has_dependents]
    inputs = {
        s.name: _input_model(s.handler, {"file": s.source.file, "flow": flow.name, "step": s.name})
        for s in steps.values()
    }
    graph = FlowGraph(flow, entry, steps, subscribers, edges, levels, sinks, inputs)
    graph.stall_timeout = _auto_stall_timeout(graph, step_timeout)
    return graph


def _levels(
    entry: StepDef, steps: dict[str, StepDef], producers: dict[str, set[str]]
) -> dict[str, int]:
    """Level of each startable step: entry 0, else 1 + the latest of its earliest producers."""
    levels = {entry.name: 0}
    changed = True
    while changed:
        changed = False
        for step in steps.values():
            if step.entry:
                continue
            token_levels = []
            for token in step.subscribes:
                ready = [levels[p] for p in producers[token] if p in levels and p != step.name]
                if not ready:
                    break
                token_levels.append(min(ready))
            else:
                level = 1 + max(token_levels)
                if levels.get(step.name, 1 << 30) > level:
                    levels[step.name] = level
                    changed = True
    return levels


def _auto_stall_timeout(graph: FlowGraph, default_step_timeout: float) -> float:
    by_level: dict[int, float] = {}
    for step in graph.steps.values():
        per_try = step.options.timeout or default_step_timeout
        budget = per_try * (1 + step.options.retries)
        level = graph.levels[step.name]
        by_level[level] = max(by_level.get(level, 0.0), budget)
    total = sum(by_level.values())
    return total + max(total / 10, 300.0)


@dataclass(slots=True)
class Registry:
    """Every flow and function of an app, validated."""

    flows: dict[str, FlowGraph] = field(default_factory=dict)
    functions: dict[str, FunctionDef] = field(default_factory=dict)
    function_inputs: dict[str, InputModel] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)

    def add(self, item: Flow | FunctionDef, step_timeout: float = 300.0) -> None:
        if isinstance(item, Flow):
            if item.name in self.flows and self.flows[item.name].flow is not item:
                raise DefinitionError("duplicate flow name", file=item.source.file, flow=item.name)
            graph = analyze(item, step_timeout)
            for step in graph.steps.values():
                _check_handler(
                    step, {"file": step.source.file, "flow": item.name, "step": step.name}
                )
            self.flows[item.name] = graph
            return
        where = {"file": item.source.file, "step": item.name}
        if item.name in self.functions and self.functions[item.name] is not item:
            raise DefinitionError(f"duplicate function name {item.name!r}", file=item.source.file)
        _check_runtime(item, where)
        _check_handler(item, where)
        self.functions[item.name] = item
        self.function_inputs[item.name] = _input_model(item.handler, where)

    def flow(self, name: str) -> FlowGraph:
        return self.flows[name]

    def queues(self) -> dict[str, int | None]:
        """Every queue the app's definitions use, with its per-process concurrency (if set)."""
        out: dict[str, int | None] = {}
        all_opts = [s.options for g in self.flows.values() for s in g.steps.values()]
        all_opts += [f.options for f in self.functions.values()]
        for opts in all_opts:
            current = out.get(opts.queue)
            if opts.concurrency is not None:
                current = opts.concurrency if current is None else min(current, opts.concurrency)
            out[opts.queue] = current
        return out

    def event_subscribers(self, event: str) -> list[str]:
        """Flows whose entry step lists ``triggers.event(event)`` in mode auto."""
        return [
            g.name
            for g in self.flows.values()
            for t in g.entry.triggers
            if t.type == "event" and t.name == event and t.mode == "auto"
        ]


def _collect(module: ModuleType) -> Iterable[Flow | FunctionDef]:
    for value in vars(module).values():
        if isinstance(value, Flow | FunctionDef):
            yield value


def _module_names(entry: str, root: Path) -> list[str]:
    path = Path(entry)
    if not path.is_absolute():
        path = root / path
    if path.is_file() and path.suffix == ".py":
        base, names = path.parent, [path.stem]
    elif path.is_dir():
        base = path.parent
        names = []
        for file in sorted(path.rglob("*.py")):
            rel = file.relative_to(base).with_suffix("")
            if any(part.startswith((".", "_")) and part != "__init__" for part in rel.parts):
                continue
            parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
            names.append(".".join(parts))
    elif "/" in entry or entry.endswith(".py"):
        raise DefinitionError(f"app path {entry!r} does not exist")
    else:
        return [entry]
    if str(base) in sys.path:
        sys.path.remove(str(base))
    sys.path.insert(0, str(base))
    for top in {name.split(".")[0] for name in names}:
        _forget_if_elsewhere(top, base)
    return names


def _forget_if_elsewhere(top: str, base: Path) -> None:
    """Drop already imported modules of the same package name that were loaded from another
    directory (another app loaded earlier in this process), so this app's modules load."""
    loaded = [n for n in sys.modules if n == top or n.startswith(f"{top}.")]
    files = [getattr(sys.modules[n], "__file__", None) for n in loaded]
    root = base.resolve()
    if all(f is None or Path(f).resolve().is_relative_to(root) for f in files):
        return
    for name in loaded:
        del sys.modules[name]
    importlib.invalidate_caches()


def _module_file(name: str) -> str:
    """The file a module would be loaded from, for error messages ('' if unknown)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return ""
    return spec.origin if spec is not None and spec.origin else ""


def discover(app: Iterable[str], root: Path | None = None, step_timeout: float = 300.0) -> Registry:
    """Import every module named by ``app`` (directories, ``.py`` files or import paths)."""
    registry = Registry()
    base = root or Path.cwd()
    found: dict[int, Flow | FunctionDef] = {}
    for entry in app:
        for name in _module_names(entry, base):
            try:
                module = importlib.import_module(name)
            except DefinitionError:
                raise
            except ModuleNotFoundError as exc:
                if exc.name == name or name.startswith(f"{exc.name}."):
                    raise DefinitionError(f"cannot import app module {name!r}: {exc}") from None
                file = _module_file(name)
                raise DefinitionError(f"error importing {name!r}: {exc}", file=file) from exc
            except Exception as exc:
                file = getattr(exc, "filename", None) or _module_file(name)
                raise DefinitionError(
                    f"error importing {name!r}: {type(exc).__name__}: {exc}", file=str(file)
                ) from exc
            registry.modules.append(name)
            for item in _collect(module):
                found.setdefault(id(item), item)
    # Steps of one flow may live in several modules: analyse once everything is imported.
    for item in found.values():
        registry.add(item, step_timeout)
    return registry
