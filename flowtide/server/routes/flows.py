"""``/api/flows``: definitions with their graph, triggers, awaits and run counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from flowtide.engine.runs import NotFound
from flowtide.server.deps import ServiceDep
from flowtide.server.models import StartRun
from flowtide.server.responses import JSONResponse, json_response
from flowtide.server.stats import flow_stats

__all__ = ["router"]

router = APIRouter(tags=["flows"])


@router.get("/flows", summary="Every flow with its steps, graph, triggers and run counts")
async def list_flows(service: ServiceDep) -> JSONResponse:
    items: list[dict[str, Any]] = []
    for name in sorted(service.registry.flows):
        item = service.registry.flows[name].describe()
        item["stats"] = await flow_stats(service.backend, name)
        items.append(item)
    return json_response({"items": items, "next_cursor": None})


@router.get("/flows/{flow}", summary="One flow: steps, edges, levels, triggers, awaits")
async def get_flow(flow: str, service: ServiceDep) -> JSONResponse:
    graph = service.registry.flows.get(flow)
    if graph is None:
        raise NotFound(f"unknown flow {flow!r}")
    item = graph.describe()
    item["stats"] = await flow_stats(service.backend, flow)
    return json_response(item)


@router.post(
    "/flows/{flow}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Start a run; 404 unknown flow, 422 invalid input",
)
async def start_run(flow: str, service: ServiceDep, body: StartRun | None = None) -> JSONResponse:
    run_id = await service.start(flow, body.input if body is not None else None)
    return json_response({"run_id": run_id}, status.HTTP_201_CREATED)
