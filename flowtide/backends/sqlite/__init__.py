"""The embedded SQLite backend (``sqlite:///PATH``), the default."""

from flowtide.backends.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
