"""Operations endpoints, all public: liveness, readiness and Prometheus metrics.

``/metrics`` is public like every Prometheus exporter's: scrapers rarely carry credentials,
and it holds counts only. Restrict it at the network level if that matters.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

from flowtide.server.deps import AppDep, ServiceDep
from flowtide.server.errors import error_body
from flowtide.server.responses import JSONResponse, json_response
from flowtide.server.stats import STATS_WINDOW, flow_stats, queue_overview

__all__ = ["router"]

router = APIRouter(tags=["operations"])
READY_TIMEOUT = 5.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONResponse:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the backend answers (503 if not)")
async def readyz(app: AppDep) -> JSONResponse:
    try:
        backend = app.service.backend
    except RuntimeError:
        return json_response(error_body("unavailable", "the flowtide app is not open"), 503)
    try:
        await asyncio.wait_for(backend.ping(), READY_TIMEOUT)
    except Exception as exc:  # whatever the failure, the backend is not usable
        message = str(exc) or f"the backend did not answer within {READY_TIMEOUT}s"
        return json_response(error_body("backend_unavailable", message), 503)
    return json_response({"status": "ready", "backend": backend.url.split(":", 1)[0]})


@router.get("/metrics", summary="Prometheus text format", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    registry = CollectorRegistry(auto_describe=True)
    runs = Gauge(
        "flowtide_runs",
        f"Runs by flow and status among each flow's {STATS_WINDOW} most recent runs",
        ["flow", "status"],
        registry=registry,
    )
    jobs = Gauge(
        "flowtide_queue_jobs", "Jobs by queue and state", ["queue", "state"], registry=registry
    )
    paused = Gauge(
        "flowtide_queue_paused", "1 if the queue is paused", ["queue"], registry=registry
    )
    for flow in sorted(service.registry.flows):
        stats = await flow_stats(service.backend, flow)
        for status, count in stats["by_status"].items():
            runs.labels(flow, status).set(count)
    for queue in await queue_overview(service.backend, service.registry):
        for state, count in queue["counts"].items():
            jobs.labels(queue["name"], state).set(count)
        paused.labels(queue["name"]).set(1 if queue["paused"] else 0)
    body = generate_latest(registry) + generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
