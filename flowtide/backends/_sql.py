"""Loading named queries and versioned migrations from the package's ``.sql`` files."""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["load_migrations", "load_queries"]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    text = resources.files(package).joinpath(filename).read_text()
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every ``migrations/NNNN_name.sql``, in order."""
    folder = resources.files(package).joinpath("migrations")
    out = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            out.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(out)
