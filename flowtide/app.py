"""The client API: :class:`App` (async) and :class:`SyncApp` (blocking), DESIGN A4."""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from flowtide._util.durations import Duration
from flowtide.backends import Backend, create_backend
from flowtide.config import Config, load_config
from flowtide.engine.awaits import AwaitService
from flowtide.engine.runs import RunService
from flowtide.engine.triggers import FireRequest, TriggerService
from flowtide.registry import Registry, discover

__all__ = ["App", "SyncApp"]

T = TypeVar("T")


class Triggers:
    """``app.triggers``: the trigger registry (DESIGN A2b, A8)."""

    def __init__(self, app: App) -> None:
        self._app = app

    @property
    def _service(self) -> TriggerService:
        return self._app.trigger_service

    async def fire(self, name: str, payload: Any = None) -> dict[str, Any]:
        """Fire a trigger: ``{"fire_id", "run_ids", ...}``."""
        return await self._service.fire(name, FireRequest(payload, "api"))

    async def list(self) -> builtins.list[dict[str, Any]]:
        return await self._service.all()

    async def get(self, name: str) -> dict[str, Any]:
        return await self._service.get(name)

    async def create(self, definition: dict[str, Any]) -> dict[str, Any]:
        return await self._service.create(definition)

    async def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._service.update(name, changes)

    async def delete(self, name: str) -> None:
        await self._service.delete(name)

    async def pause(self, name: str) -> dict[str, Any]:
        return await self._service.set_status(name, paused=True)

    async def resume(self, name: str) -> dict[str, Any]:
        return await self._service.set_status(name, paused=False)

    async def subscribe(self, name: str, flow: str, mode: str = "auto") -> dict[str, Any]:
        return await self._service.subscribe(name, flow, mode)

    async def unsubscribe(self, name: str, flow: str) -> dict[str, Any]:
        return await self._service.unsubscribe(name, flow)

    async def fires(self, name: str, limit: int = 50) -> builtins.list[dict[str, Any]]:
        items, _ = await self._service.fires(name, limit)
        return items

    async def replay(self, name: str, fire_id: str) -> dict[str, Any]:
        return await self._service.replay(name, fire_id)


def load_registry(config: Config) -> Registry:
    entries = [
        entry
        for entry in config.app
        if not (entry == "functions" and not (config.root / entry).exists())
    ]
    return discover(entries, config.root, config.flow.step_timeout)


class App:
    """Start runs, wait for them, emit events and enqueue jobs against a backend.

    ``async with App.from_config() as app: ...`` opens the backend and loads the definitions.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        registry: Registry | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.config = config or Config()
        self._registry = registry
        self._backend = backend
        self._service: RunService | None = None
        self._triggers: TriggerService | None = None
        self.triggers = Triggers(self)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> App:
        return cls(load_config(path, overrides=overrides or None))

    @property
    def service(self) -> RunService:
        if self._service is None:
            raise RuntimeError("the app is not open: use 'async with app:' or await app.open()")
        return self._service

    @property
    def trigger_service(self) -> TriggerService:
        if self._triggers is None:
            raise RuntimeError("the app is not open: use 'async with app:' or await app.open()")
        return self._triggers

    @property
    def await_service(self) -> AwaitService:
        return self.trigger_service.awaits

    @property
    def registry(self) -> Registry:
        return self.service.registry

    @property
    def backend(self) -> Backend:
        return self.service.backend

    async def open(self) -> App:
        registry = self._registry or load_registry(self.config)
        backend = self._backend or create_backend(self.config.backend, self.config.root)
        await backend.open()
        self._service = RunService(backend, registry, self.config)
        self._triggers = TriggerService(self._service, AwaitService(self._service))
        await self._triggers.reconcile()
        return self

    async def close(self) -> None:
        if self._service is not None:
            await self._service.backend.close()
            self._service = None
            self._triggers = None

    async def __aenter__(self) -> App:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self, flow: str, input: Any = None) -> str:
        return await self.service.start(flow, input)

    async def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        return await self.service.wait(run_id, timeout)

    async def emit(self, name: str, payload: Any = None) -> list[str]:
        """Publish an event: fires the event trigger of that name and resolves the event
        awaits waiting for it. Returns the ids of the runs it started."""
        return await self.trigger_service.emit(name, payload)

    async def resolve(self, await_id: str, data: Any = None) -> None:
        """Resolve a pending await (what ``POST /api/awaits/{id}/resolve`` does)."""
        await self.await_service.resolve(await_id, data)

    async def enqueue(
        self,
        function: str,
        input: Any = None,
        *,
        delay: Duration | None = None,
        key: str | None = None,
    ) -> str:
        return await self.service.enqueue(function, input, delay=delay, key=key)

    async def enqueue_many(
        self, function: str, inputs: list[Any], *, delay: Duration | None = None
    ) -> list[str]:
        """Enqueue one job per input in one atomic write."""
        return await self.service.enqueue_many(function, inputs, delay=delay)

    async def cancel(self, run_id: str) -> None:
        await self.service.cancel(run_id)

    async def restart(self, run_id: str) -> str:
        return await self.service.restart(run_id)

    async def run(self, run_id: str) -> dict[str, Any]:
        return await self.service.view(run_id)


class SyncApp:
    """The blocking twin of :class:`App` for scripts: same methods, not awaited."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="flowtide-sync", daemon=True
        )
        self._thread.start()
        self.triggers = _SyncTriggers(self)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> SyncApp:
        return cls(App.from_config(path, **overrides))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def open(self) -> SyncApp:
        self._call(self._app.open())
        return self

    def close(self) -> None:
        try:
            self._call(self._app.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> SyncApp:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, flow: str, input: Any = None) -> str:
        return self._call(self._app.start(flow, input))

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        return self._call(self._app.wait(run_id, timeout))

    def emit(self, name: str, payload: Any = None) -> list[str]:
        return self._call(self._app.emit(name, payload))

    def resolve(self, await_id: str, data: Any = None) -> None:
        self._call(self._app.resolve(await_id, data))

    def enqueue(
        self,
        function: str,
        input: Any = None,
        *,
        delay: Duration | None = None,
        key: str | None = None,
    ) -> str:
        return self._call(self._app.enqueue(function, input, delay=delay, key=key))

    def enqueue_many(
        self, function: str, inputs: list[Any], *, delay: Duration | None = None
    ) -> list[str]:
        return self._call(self._app.enqueue_many(function, inputs, delay=delay))

    def cancel(self, run_id: str) -> None:
        self._call(self._app.cancel(run_id))

    def restart(self, run_id: str) -> str:
        return self._call(self._app.restart(run_id))

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call(self._app.run(run_id))


class _SyncTriggers:
    """``SyncApp.triggers``: the methods of :class:`Triggers`, blocking."""

    def __init__(self, app: SyncApp) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._app._app.triggers, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._app._call(method(*args, **kwargs))

        return call
