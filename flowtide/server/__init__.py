"""The HTTP server (DESIGN A8): JSON API, Server-Sent Events, operations endpoints and pages.

``create_app(app)`` builds the ASGI application for an open :class:`~flowtide.app.App`; run it
with any ASGI server (``flowtide serve`` uses uvicorn, see :mod:`flowtide.server.host`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from flowtide import __version__
from flowtide.app import App
from flowtide.server.deps import require_token
from flowtide.server.errors import ApiError, install_error_handlers
from flowtide.server.responses import JSONResponse
from flowtide.server.routes import (
    apidocs,
    awaits,
    dashboard,
    events,
    flows,
    hooks,
    jobs,
    ops,
    queues,
    runs,
    schedules,
    triggers,
)
from flowtide.server.state import ServerState

__all__ = ["ApiError", "close_streams", "create_app"]


def create_app(app: App, *, keepalive: float = 15.0, stats_interval: float = 2.0) -> FastAPI:
    """The ASGI app serving ``app`` (already open).

    ``keepalive``: seconds of silence before an SSE stream sends a comment line;
    ``stats_interval``: how often ``/api/events/stream`` checks the queue counts for changes.
    """
    api = FastAPI(
        title="flowtide",
        version=__version__,
        description="Event-driven workflow orchestration: runs, queues, jobs, triggers, awaits "
        "and live events.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served from the package by routes.apidocs: no CDN
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    api.state.flowtide = ServerState(app, keepalive=keepalive, stats_interval=stats_interval)
    install_error_handlers(api)

    # Every /api route needs the bearer token when server.api_token is set.
    v1 = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
    for module in (flows, runs, queues, jobs, events, triggers, schedules, awaits):
        v1.include_router(module.router)
    api.include_router(v1)
    hooks.install(api)  # public webhooks (each trigger has its own auth), matched first
    apidocs.install(api)
    api.include_router(ops.router)
    api.include_router(dashboard.router)
    dashboard.install_static(api)
    return api


def close_streams(api: FastAPI) -> None:
    """End the open SSE streams of an app made by :func:`create_app` (before server shutdown,
    which otherwise waits for them forever)."""
    state: ServerState = api.state.flowtide
    state.close_streams()
