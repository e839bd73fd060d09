"""Flows, steps and standalone functions as plain data. Nothing here does I/O.

Decorators return a :class:`StepDef` / :class:`FunctionDef` that stays callable, so a handler
can still be unit-tested as a plain function. The registry finds these objects by scanning the
modules it imports, so defining a flow has no global side effect.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from flowtide._util.durations import Duration, parse_duration
from flowtide.definitions.awaits import Await
from flowtide.definitions.backoff import DEFAULT_BACKOFF, Backoff
from flowtide.definitions.triggers import Trigger

__all__ = ["Flow", "FunctionDef", "Runtime", "StepDef", "function"]

Runtime = Literal["python", "python-process", "node"]
Handler = Callable[..., Any]


@dataclass(slots=True)
class JobOptions:
    """Options shared by flow steps and standalone functions."""

    queue: str
    retries: int = 0
    backoff: Backoff = DEFAULT_BACKOFF
    timeout: float | None = None
    concurrency: int | None = None
    priority: int = 0
    runtime: Runtime = "python"


@dataclass(slots=True)
class Source:
    file: str
    line: int

    @classmethod
    def of(cls, handler: Handler | None, depth: int) -> Source:
        if handler is not None:
            code = getattr(handler, "__code__", None)
            if code is not None:
                return cls(code.co_filename, code.co_firstlineno)
        frame = sys._getframe(depth + 1)
        return cls(frame.f_code.co_filename, frame.f_lineno)


@dataclass(slots=True, eq=False)
class StepDef:
    name: str
    flow: str
    handler: Handler | None
    options: JobOptions
    source: Source
    entry: bool = False
    subscribes: tuple[str, ...] = ()
    emits: tuple[str, ...] = ()
    optional: bool = False
    await_before: Await | None = None
    await_after: Await | None = None
    triggers: tuple[Trigger, ...] = ()
    handler_path: str | None = None
    hooks: dict[str, Handler] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.handler is None:
            raise TypeError(f"step {self.flow}.{self.name} has no Python handler")
        return self.handler(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return self.handler is not None and inspect.iscoroutinefunction(self.handler)


@dataclass(slots=True, eq=False)
class FunctionDef:
    name: str
    handler: Handler | None
    options: JobOptions
    source: Source
    handler_path: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.handler is None:
            raise TypeError(f"function {self.name} has no Python handler")
        return self.handler(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return self.handler is not None and inspect.iscoroutinefunction(self.handler)


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _job_options(
    queue: str,
    retries: int,
    backoff: Backoff | None,
    timeout: Duration | None,
    concurrency: int | None,
    priority: int,
    runtime: Runtime,
) -> JobOptions:
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    return JobOptions(
        queue=queue,
        retries=retries,
        backoff=backoff or DEFAULT_BACKOFF,
        timeout=None if timeout is None else parse_duration(timeout),
        concurrency=concurrency,
        priority=priority,
        runtime=runtime,
    )


class Flow:
    """A named set of steps wired by the events they emit and subscribe to."""

    def __init__(self, name: str, *, description: str = "", queue: str | None = None) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a flow needs a non-empty name")
        self.name = name
        self.description = description
        self.queue = queue or name
        self.steps: list[StepDef] = []
        self.source = Source.of(None, 1)

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, steps={[s.name for s in self.steps]})"

    @overload
    def entry(
        self,
        name: str,
        *,
        handler: str,
        emits: Sequence[str] | str | None = None,
        triggers: Sequence[Trigger] = (),
        **options: Any,
    ) -> StepDef: ...

    @overload
    def entry(
        self,
        name: str | None = None,
        *,
        emits: Sequence[str] | str | None = None,
        triggers: Sequence[Trigger] = (),
        **options: Any,
    ) -> Callable[[Handler], StepDef]: ...

    def entry(
        self,
        name: str | None = None,
        *,
        emits: Sequence[str] | str | None = None,
        triggers: Sequence[Trigger] = (),
        handler: str | None = None,
        **options: Any,
    ) -> StepDef | Callable[[Handler], StepDef]:
        """Declare the entry step: a decorator, or with ``handler=`` the step itself."""
        return self._declare(name, True, (), emits, triggers, handler, options)

    @overload
    def step(
        self,
        name: str,
        *,
        handler: str,
        subscribes: Sequence[str] | str,
        emits: Sequence[str] | str | None = None,
        **options: Any,
    ) -> StepDef: ...

    @overload
    def step(
        self,
        name: None = None,
        *,
        subscribes: Sequence[str] | str,
        emits: Sequence[str] | str | None = None,
        **options: Any,
    ) -> Callable[[Handler], StepDef]: ...

    def step(
        self,
        name: str | None = None,
        *,
        subscribes: Sequence[str] | str,
        emits: Sequence[str] | str | None = None,
        handler: str | None = None,
        **options: Any,
    ) -> StepDef | Callable[[Handler], StepDef]:
        return self._declare(name, False, subscribes, emits, (), handler, options)

    def _declare(
        self,
        name: str | None,
        entry: bool,
        subscribes: Sequence[str] | str,
        emits: Sequence[str] | str | None,
        triggers: Sequence[Trigger],
        handler_path: str | None,
        options: dict[str, Any],
    ) -> StepDef | Callable[[Handler], StepDef]:
        def build(fn: Handler | None, depth: int) -> StepDef:
            opts = dict(options)
            step = StepDef(
                name=name or str(getattr(fn, "__name__", "")),
                flow=self.name,
                handler=fn,
                options=_job_options(
                    opts.pop("queue", None) or self.queue,
                    opts.pop("retries", 0),
                    opts.pop("backoff", None),
                    opts.pop("timeout", None),
                    opts.pop("concurrency", None),
                    opts.pop("priority", 0),
                    opts.pop("runtime", "python"),
                ),
                source=Source.of(fn, depth),
                entry=entry,
                subscribes=_as_tuple(subscribes),
                emits=_as_tuple(emits),
                optional=bool(opts.pop("optional", False)),
                await_before=opts.pop("await_before", None),
                await_after=opts.pop("await_after", None),
                triggers=tuple(triggers),
                handler_path=handler_path,
            )
            for hook in ("on_register", "on_resolve", "on_timeout"):
                if hook in opts:
                    step.hooks[hook] = opts.pop(hook)
            if opts:
                raise TypeError(
                    f"{step.source.file}: flow {self.name!r}, step {step.name!r}: "
                    f"unknown option(s) {', '.join(sorted(opts))}"
                )
            self.steps.append(step)
            return step

        if handler_path is not None:
            if name is None:
                raise TypeError("a step declared with handler= needs a name")
            return build(None, 3)
        return lambda fn: build(fn, 1)


@overload
def function(name: Handler, /) -> FunctionDef: ...


@overload
def function(
    name: str,
    /,
    *,
    handler: str,
    queue: str | None = None,
    retries: int = 0,
    backoff: Backoff | None = None,
    timeout: Duration | None = None,
    concurrency: int | None = None,
    priority: int = 0,
    runtime: Runtime = "python",
) -> FunctionDef: ...


@overload
def function(
    name: str | None = None,
    /,
    *,
    queue: str | None = None,
    retries: int = 0,
    backoff: Backoff | None = None,
    timeout: Duration | None = None,
    concurrency: int | None = None,
    priority: int = 0,
    runtime: Runtime = "python",
) -> Callable[[Handler], FunctionDef]: ...


def function(
    name: str | Handler | None = None,
    /,
    *,
    queue: str | None = None,
    retries: int = 0,
    backoff: Backoff | None = None,
    timeout: Duration | None = None,
    concurrency: int | None = None,
    priority: int = 0,
    runtime: Runtime = "python",
    handler: str | None = None,
) -> FunctionDef | Callable[[Handler], FunctionDef]:
    """Declare a standalone queue function: ``@function(queue=...)``, ``@function`` or
    ``function("name", runtime="node", handler="path.mjs")``."""

    def build(fn: Handler | None, fname: str, depth: int) -> FunctionDef:
        opts = _job_options(
            queue or fname, retries, backoff, timeout, concurrency, priority, runtime
        )
        return FunctionDef(fname, fn, opts, Source.of(fn, depth), handler)

    if callable(name):
        return build(name, name.__name__, 1)
    if handler is not None:
        if name is None:
            raise TypeError("a function declared with handler= needs a name")
        return build(None, name, 2)
    return lambda fn: build(fn, name or fn.__name__, 1)
