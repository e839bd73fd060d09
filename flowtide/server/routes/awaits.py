"""``/api/awaits``: pending awaits of every run, and resolving one by id."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from flowtide.events import Event
from flowtide.server.deps import AwaitsDep
from flowtide.server.models import ResolveAwait
from flowtide.server.responses import JSONResponse, json_response

__all__ = ["resolved", "router"]

router = APIRouter(prefix="/awaits", tags=["awaits"])


def resolved(events: list[Event], await_id: str | None = None) -> dict[str, Any]:
    """The answer to a resolution: which await of which run it resolved."""
    for ev in events:
        if ev["type"] == "await.resolved":
            data = ev.get("data") or {}
            return {
                "await_id": data.get("await_id", await_id),
                "run_id": ev["run_id"],
                "status": "resolved",
            }
    return {"await_id": await_id, "run_id": None, "status": "resolved"}


@router.get("", summary="Pending awaits (webhook ones with their URL), oldest first")
async def list_awaits(
    awaits: AwaitsDep,
    status: Annotated[Literal["pending"], Query(description="only pending is listed")] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JSONResponse:
    items, next_cursor = await awaits.list_pending(limit, cursor or None)
    return json_response({"items": items, "next_cursor": next_cursor})


@router.post(
    "/{await_id}/resolve",
    summary="Resolve a pending await with `data`; 404 unknown, 410 no longer pending",
)
async def resolve_await(
    await_id: str, awaits: AwaitsDep, body: ResolveAwait | None = None
) -> JSONResponse:
    events = await awaits.resolve(await_id, body.data if body is not None else None)
    return json_response(resolved(events, await_id))
