"""``/api/triggers``: the trigger registry, firing, pausing, fire history and replays."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query

from flowtide.engine.schedules import ScheduleService
from flowtide.engine.triggers import FireRequest, TriggerService
from flowtide.server.deps import AppDep, TriggersDep
from flowtide.server.responses import JSONResponse, json_response

__all__ = ["describe", "router"]

router = APIRouter(prefix="/triggers", tags=["triggers"])

_INTERNAL = ("code_hash", "def_hash")  # bookkeeping of the registry, not part of the API


async def describe(
    triggers: TriggerService,
    doc: dict[str, Any],
    base_url: str,
    schedules: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A trigger document with its stats; a webhook's URL; a schedule's next/last occurrence."""
    item = {k: v for k, v in doc.items() if k not in _INTERNAL}
    item["stats"] = await triggers.stats(doc["name"])
    if doc["type"] == "webhook":
        item["url"] = f"{base_url.rstrip('/')}/hooks/{quote(doc['name'], safe='')}"
    if doc["type"] == "schedule":
        if schedules is None:
            schedules = {s["name"]: s for s in await ScheduleService(triggers).list()}
        state = schedules.get(doc["name"]) or {}
        item["next_at"] = state.get("next_at")
        item["last_at"] = state.get("last_at")
        item["missed"] = state.get("missed", 0)
    return item


TriggerBody = Annotated[
    dict[str, Any],
    Body(
        description="A trigger definition: name, type (event|webhook|schedule|manual), "
        "description, options, schema (a JSON schema), subscriptions {flow: {mode}}, status",
        examples=[
            {
                "name": "orders-in",
                "type": "webhook",
                "options": {"method": "POST", "rate_limit": "100/minute"},
                "subscriptions": {"orders": {"mode": "auto"}},
            }
        ],
    ),
]


@router.get("", summary="Every trigger with its subscriptions, status and stats")
async def list_triggers(triggers: TriggersDep, app: AppDep) -> JSONResponse:
    docs = await triggers.all()
    schedules = None
    if any(doc["type"] == "schedule" for doc in docs):
        schedules = {s["name"]: s for s in await ScheduleService(triggers).list()}
    base = app.config.base_url
    items = [await describe(triggers, doc, base, schedules) for doc in docs]
    return json_response({"items": items, "next_cursor": None})


@router.post("", status_code=201, summary="Create a trigger; 400 if invalid, 409 if it exists")
async def create_trigger(body: TriggerBody, triggers: TriggersDep, app: AppDep) -> JSONResponse:
    doc = await triggers.create(body)
    return json_response(await describe(triggers, doc, app.config.base_url), 201)


@router.get("/{name}", summary="One trigger: JSON schema, options, subscriptions, status and stats")
async def get_trigger(name: str, triggers: TriggersDep, app: AppDep) -> JSONResponse:
    doc = await triggers.get(name)
    return json_response(await describe(triggers, doc, app.config.base_url))


@router.patch("/{name}", summary="Change a trigger (options are merged); 400 if invalid")
async def update_trigger(
    name: str, body: TriggerBody, triggers: TriggersDep, app: AppDep
) -> JSONResponse:
    doc = await triggers.update(name, body)
    return json_response(await describe(triggers, doc, app.config.base_url))


@router.delete("/{name}", summary="Delete a trigger (a code-declared one returns on restart)")
async def delete_trigger(name: str, triggers: TriggersDep) -> JSONResponse:
    await triggers.delete(name)
    return json_response({"name": name, "deleted": True})


@router.post(
    "/{name}/fire",
    status_code=202,
    summary="Fire a trigger with the request body as payload; 404, 409 paused, 422 invalid",
)
async def fire_trigger(
    name: str,
    triggers: TriggersDep,
    payload: Annotated[Any, Body(description="the payload (any JSON)")] = None,
) -> JSONResponse:
    record = await triggers.fire(name, FireRequest(payload, "api"))
    return json_response(record, 202)


@router.post("/{name}/pause", summary="Pause a trigger: fires answer 409, schedules stop")
async def pause_trigger(name: str, triggers: TriggersDep, app: AppDep) -> JSONResponse:
    doc = await triggers.set_status(name, True)
    return json_response(await describe(triggers, doc, app.config.base_url))


@router.post("/{name}/resume", summary="Resume a paused trigger")
async def resume_trigger(name: str, triggers: TriggersDep, app: AppDep) -> JSONResponse:
    doc = await triggers.set_status(name, False)
    return json_response(await describe(triggers, doc, app.config.base_url))


@router.get("/{name}/fires", summary="A trigger's fire records, newest first")
async def list_fires(
    name: str,
    triggers: TriggersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JSONResponse:
    items, next_cursor = await triggers.fires(name, limit, cursor or None)
    return json_response({"items": items, "next_cursor": next_cursor})


@router.post(
    "/{name}/fires/{fire_id}/replay",
    status_code=202,
    summary="Fire again with a recorded fire's payload: a new fire marked as a replay",
)
async def replay_fire(name: str, fire_id: str, triggers: TriggersDep) -> JSONResponse:
    return json_response(await triggers.replay(name, fire_id), 202)
