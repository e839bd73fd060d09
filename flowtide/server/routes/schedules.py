"""``/api/schedules``: every schedule trigger with its next and last occurrence."""

from __future__ import annotations

from fastapi import APIRouter

from flowtide.engine.schedules import ScheduleService
from flowtide.server.deps import TriggersDep
from flowtide.server.responses import JSONResponse, json_response

__all__ = ["router"]

router = APIRouter(prefix="/schedules", tags=["triggers"])


@router.get("", summary="Every schedule with its next/last occurrence, missed count and stats")
async def list_schedules(triggers: TriggersDep) -> JSONResponse:
    return json_response({"items": await ScheduleService(triggers).list(), "next_cursor": None})
