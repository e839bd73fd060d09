"""The conformance suite's backends: one fixture, parametrized over a list of URL factories.

The list of backends is ``tests/_backends.py``: a backend added there runs this whole suite.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from flowtide._util.clock import now
from flowtide._util.ids import uuid7
from flowtide.backends import Backend, create_backend
from flowtide.backends.base import CommitItem, Job, Transition
from flowtide.events import NewEvent, RunRecord
from tests._backends import FACTORIES, BackendFactory


@pytest.fixture(params=FACTORIES, ids=[f.name for f in FACTORIES])
def backend_factory(request: pytest.FixtureRequest) -> BackendFactory:
    factory: BackendFactory = request.param
    reason = factory.skip()
    if reason:
        pytest.skip(reason)
    return factory


@pytest.fixture
def backend_url(backend_factory: BackendFactory, tmp_path: Path) -> str:
    return backend_factory.url(tmp_path)


@pytest.fixture
async def backend(backend_url: str, backend_factory: BackendFactory) -> AsyncIterator[Backend]:
    """An opened, empty backend of each kind; what the test stored is removed afterwards."""
    b = create_backend(backend_url)
    await b.open()
    try:
        yield b
    finally:
        await b.close()
        await backend_factory.cleanup(backend_url)


@pytest.fixture
async def peer(
    backend: Backend, backend_factory: BackendFactory, backend_url: str
) -> AsyncIterator[Backend]:
    """A second handle on the same store, as another process would open it."""
    if not backend_factory.shared_url:
        yield backend
        return
    b = create_backend(backend_url)
    await b.open()
    try:
        yield b
    finally:
        await b.close()


# -- small builders shared by the conformance files (fixtures, since tests/ is no package) ---------


def _job(job_id: str | None = None, *, queue: str = "q", name: str = "fn", **fields: Any) -> Job:
    return Job(id=job_id or uuid7(), queue=queue, name=name, **fields)


def _step_job(run_id: str, step: str, *, queue: str = "q", flow: str = "f", **fields: Any) -> Job:
    return Job(id=f"{run_id}:{step}", queue=queue, name=step, run_id=run_id, flow=flow, **fields)


async def _new_run(
    backend: Backend,
    run_id: str | None = None,
    *,
    flow: str = "f",
    status: str = "running",
    jobs: Sequence[Job] = (),
) -> str:
    """Create a run record (version 1) with its ``flow.started`` event, and enqueue ``jobs``."""
    run_id = run_id or uuid7()
    ts = now()
    record = RunRecord(run_id, flow, status, {"n": 1}, ts, ts, version=1)
    if status in ("completed", "failed", "canceled", "stalled"):
        record.completed_at = ts

    def decide(stored: RunRecord | None) -> Transition:
        assert stored is None
        return Transition(
            run=record, events=[NewEvent("flow.started", {"input": {"n": 1}})], enqueue=list(jobs)
        )

    await backend.commit([CommitItem(run_id, decide)])
    return run_id


@pytest.fixture
def make_job() -> Callable[..., Job]:
    """``make_job(id=None, queue="q", name="fn", **fields)``: a standalone function job."""
    return _job


@pytest.fixture
def make_step_job() -> Callable[..., Job]:
    """``make_step_job(run_id, step, queue="q", flow="f")``: the job of a step, id ``run:step``."""
    return _step_job


@pytest.fixture
def new_run(backend: Backend) -> Callable[..., Awaitable[str]]:
    """``await new_run(run_id=None, flow="f", status="running", jobs=())`` -> run id."""
    return functools.partial(_new_run, backend)
