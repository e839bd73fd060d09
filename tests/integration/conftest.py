"""Fixtures for integration tests: one URL per backend, each on its own storage."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ["memory", "sqlite"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path / 'flowtide.db'}"
