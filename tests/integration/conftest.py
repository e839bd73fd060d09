"""Fixtures for integration tests: the engine runs against every backend of tests/_backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests._backends import FACTORIES, BackendFactory

ENGINE_BACKENDS = [f for f in FACTORIES]


@pytest.fixture(params=ENGINE_BACKENDS, ids=[f.name for f in ENGINE_BACKENDS])
async def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    factory: BackendFactory = request.param
    reason = factory.skip()
    if reason:
        pytest.skip(reason)
    url = factory.url(tmp_path)
    yield url
    await factory.cleanup(url)
