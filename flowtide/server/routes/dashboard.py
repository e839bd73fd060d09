"""``/`` and the dashboard's deep links: a small server-rendered page until the live dashboard.

The pages are public (like ``/``). When ``server.api_token`` is set they show the flows only,
not runs: run data stays behind the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from flowtide import __version__
from flowtide.server.deps import AppDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
RECENT_RUNS = 25

DEEP_LINKS = (
    "/",
    "/flows",
    "/flows/{flow}",
    "/runs",
    "/runs/{run_id}",
    "/triggers",
    "/triggers/{name}",
    "/schedules",
    "/approvals",
    "/queues",
    "/queues/{queue}",
)


async def page(request: Request, app: AppDep) -> Response:
    service = app.service
    public = not app.config.server.api_token
    context: dict[str, Any] = {
        "version": __version__,
        "path": request.url.path,
        "flows": [
            service.registry.flows[name].describe() for name in sorted(service.registry.flows)
        ],
        "runs": [],
        "show_runs": public,
    }
    if public:
        page_ = await service.backend.list_runs(limit=RECENT_RUNS)
        context["runs"] = [record.summary() for record in page_.items]
    return templates.TemplateResponse(request, "dashboard.html", context)


for _path in DEEP_LINKS:
    router.add_api_route(_path, page, methods=["GET"], response_class=Response)
