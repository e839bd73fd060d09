"""Backends: the protocol (``base``) and its implementations, chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flowtide.backends.base import Backend, BackendUnavailable

__all__ = ["Backend", "BackendUnavailable", "create_backend"]


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
    if scheme in ("redis", "rediss", "postgresql", "postgres"):
        raise BackendUnavailable(
            f"backend URL {url!r}: the {scheme} backend is not available in this version yet"
        )
    raise BackendUnavailable(f"backend URL {url!r}: unknown scheme {scheme!r}")
