"""``/api/queues``: job counts per queue, the jobs of a queue, pause and resume."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from flowtide.engine.runs import NotFound, RunService
from flowtide.server.deps import ServiceDep
from flowtide.server.errors import ApiError
from flowtide.server.responses import JSONResponse, json_response
from flowtide.server.stats import known_queues, queue_overview

__all__ = ["router"]

router = APIRouter(prefix="/queues", tags=["queues"])

JobState = Literal["waiting", "delayed", "active", "completed", "failed", "canceled"]


async def _require_queue(service: RunService, queue: str) -> None:
    if queue not in await known_queues(service.backend, service.registry):
        raise NotFound(f"unknown queue {queue!r}")


@router.get("", summary="Every queue with its job counts and whether it is paused")
async def list_queues(service: ServiceDep) -> JSONResponse:
    items = await queue_overview(service.backend, service.registry)
    return json_response({"items": items, "next_cursor": None})


@router.get("/{queue}/jobs", summary="A queue's jobs, newest first")
async def list_jobs(
    queue: str,
    service: ServiceDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JSONResponse:
    await _require_queue(service, queue)
    try:
        page = await service.backend.list_jobs(
            queue, state=state, limit=limit, cursor=cursor or None
        )
    except ValueError:
        raise ApiError(
            400, "invalid_cursor", f"cursor {cursor!r} is not one this API returned"
        ) from None
    items = [job.to_json() for job in page.items]
    return json_response({"items": items, "next_cursor": page.next_cursor})


@router.post("/{queue}/pause", summary="Stop workers from claiming the queue's jobs")
async def pause_queue(queue: str, service: ServiceDep) -> JSONResponse:
    await _require_queue(service, queue)
    await service.backend.set_paused(queue, True)
    return json_response({"name": queue, "paused": True})


@router.post("/{queue}/resume", summary="Let workers claim the queue's jobs again")
async def resume_queue(queue: str, service: ServiceDep) -> JSONResponse:
    await _require_queue(service, queue)
    await service.backend.set_paused(queue, False)
    return json_response({"name": queue, "paused": False})
