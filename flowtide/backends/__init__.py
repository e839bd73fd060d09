"""Backends: the protocol (``base``) and its implementations, chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flowtide.backends.base import Backend, BackendUnavailable

__all__ = ["Backend", "BackendUnavailable", "create_backend"]


def _optional(module: str, cls: str, extra: str, url: str) -> Backend:
    """A backend that needs an extra: a clear line when it (or its driver) is missing."""
    import importlib

    try:
        backend_class = getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith("flowtide"):
            raise BackendUnavailable(
                f"backend URL {url!r}: this version of flowtide has no {extra} backend yet"
            ) from None
        raise BackendUnavailable(
            f"backend URL {url!r}: install the {extra} extra (pip install 'flowtide[{extra}]')"
        ) from None
    backend: Backend = backend_class(url)
    return backend


def create_backend(url: str, root: Path | None = None) -> Backend:
    """The backend for ``url``; relative SQLite paths are resolved against ``root``."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from flowtide.backends.memory import MemoryBackend

        return MemoryBackend(url)
    if scheme == "sqlite":
        from flowtide.backends.sqlite import SQLiteBackend

        backend = SQLiteBackend(url)
        if root is not None and backend.path not in ("", ":memory:"):
            path = Path(backend.path)
            if not path.is_absolute():
                backend.path = str(root / path)
        return backend
    if scheme in ("redis", "rediss"):
        return _optional("flowtide.backends.redis", "RedisBackend", "redis", url)
    if scheme in ("postgresql", "postgres"):
        return _optional("flowtide.backends.postgres", "PostgresBackend", "postgres", url)
    raise BackendUnavailable(f"backend URL {url!r}: unknown scheme {scheme!r}")
