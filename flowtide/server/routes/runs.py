"""``/api/runs``: listing, views, history, the live stream, time travel, cancel, restart."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query

from flowtide.engine.runs import NotFound
from flowtide.server.deps import BackendDep, ServiceDep, StateDep
from flowtide.server.responses import EventStreamResponse, JSONResponse, json_response
from flowtide.server.sse import parse_cursor, run_stream

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"])

RunStatus = Literal["running", "awaiting", "completed", "failed", "canceled", "stalled"]


async def _require_run(backend: BackendDep, run_id: str) -> None:
    if await backend.get_run(run_id) is None:
        raise NotFound(f"unknown run {run_id!r}")


@router.get("", summary="Runs, newest first")
async def list_runs(
    backend: BackendDep,
    flow: str | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JSONResponse:
    page = await backend.list_runs(flow=flow, status=status, limit=limit, cursor=cursor or None)
    items = [record.summary() for record in page.items]
    return json_response({"items": items, "next_cursor": page.next_cursor})


@router.get("/{run_id}", summary="A run's view: status, steps, result, error, awaits")
async def get_run(run_id: str, service: ServiceDep) -> JSONResponse:
    return json_response(await service.view(run_id))


@router.get("/{run_id}/events", summary="A run's events in order, after seq `after`")
async def list_events(
    run_id: str,
    backend: BackendDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> JSONResponse:
    await _require_run(backend, run_id)
    start = parse_cursor(cursor, "cursor")
    events = await backend.read_events(run_id, after=after if start is None else start, limit=limit)
    more = len(events) == limit
    next_cursor = str(events[-1]["seq"]) if more else None
    return json_response({"items": events, "next_cursor": next_cursor})


@router.get(
    "/{run_id}/stream",
    summary="Server-Sent Events: the run's history, then live events until it ends",
    response_class=EventStreamResponse,
)
async def stream_run(
    run_id: str,
    state: StateDep,
    backend: BackendDep,
    after: Annotated[int | None, Query(ge=0, description="start after this seq")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    await _require_run(backend, run_id)
    resume = parse_cursor(last_event_id, "Last-Event-ID")
    start = resume if resume is not None else (after or 0)
    return EventStreamResponse(run_stream(state, backend, run_id, start))


@router.get("/{run_id}/state", summary="The run's state as of event `at` (default: now)")
async def get_state(
    run_id: str,
    service: ServiceDep,
    at: Annotated[int | None, Query(ge=0)] = None,
) -> JSONResponse:
    return json_response(await service.state_at(run_id, at))


@router.post("/{run_id}/cancel", summary="Cancel a run; 409 if it already ended")
async def cancel_run(run_id: str, service: ServiceDep) -> JSONResponse:
    await service.cancel(run_id)
    record = await service.backend.get_run(run_id)
    return json_response(
        {"run_id": run_id, "status": record.status if record is not None else "canceled"}
    )


@router.post(
    "/{run_id}/restart",
    status_code=201,
    summary="Start a new run with the same input (canceling this one if still active)",
)
async def restart_run(run_id: str, service: ServiceDep) -> JSONResponse:
    new_id = await service.restart(run_id)
    return json_response({"run_id": new_id, "restarted_from": run_id}, 201)
