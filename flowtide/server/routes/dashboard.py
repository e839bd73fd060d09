"""``/`` and the dashboard's deep links (DESIGN A8): one server-rendered shell per page.

The shell carries no run data: the ES modules in ``flowtide/server/static`` fetch everything
from the public JSON API (with the bearer token from the browser session when
``server.api_token`` is set), so whatever a person does here a script can do too.

Inside ``<noscript>`` the shell lists the flows and, when no token is configured, the recent
runs, for browsers without JavaScript. With a token, run data stays behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from flowtide import __version__
from flowtide.server.deps import AppDep

__all__ = ["STATIC", "install_static", "router"]

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=_HERE / "templates")
STATIC = _HERE / "static"
RECENT_RUNS = 25

# path pattern -> (the page module in static/pages, the nav section it belongs to)
PAGES: dict[str, tuple[str, str]] = {
    "/": ("overview", "overview"),
    "/flows": ("flows", "flows"),
    "/flows/{flow}": ("flow", "flows"),
    "/runs": ("runs", "runs"),
    "/runs/{run_id}": ("run", "runs"),
    "/triggers": ("triggers", "triggers"),
    "/triggers/{name}": ("trigger", "triggers"),
    "/schedules": ("schedules", "schedules"),
    "/approvals": ("approvals", "approvals"),
    "/queues": ("queues", "queues"),
    "/queues/{queue}": ("queue", "queues"),
}
DEEP_LINKS = tuple(PAGES)


def install_static(api: FastAPI) -> None:
    """Serve ``/static`` (the dashboard's CSS and ES modules) from the package."""
    api.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")


def _asset_version() -> str:
    """Changes when any static file changes, so browsers do not keep stale modules."""
    stamps = [int(p.stat().st_mtime) for p in STATIC.rglob("*") if p.is_file()]
    return f"{__version__}-{max(stamps, default=0)}"


def _make_page(module: str, section: str) -> Any:
    async def page(request: Request, app: AppDep) -> Response:
        public = not app.config.server.api_token
        context: dict[str, Any] = {
            "version": __version__,
            "asset_version": _asset_version(),
            "page": module,
            "section": section,
            "params": dict(request.path_params),
            "auth": "none" if public else "token",
            "flows": [],
            "runs": [],
            "show_runs": public,
        }
        try:
            service = app.service
        except RuntimeError:  # the app is not open: the page still loads, the API says 503
            service = None
        if service is not None:
            registry = service.registry
            context["flows"] = [registry.flows[n].describe() for n in sorted(registry.flows)]
            if public:
                runs = await service.backend.list_runs(limit=RECENT_RUNS)
                context["runs"] = [record.summary() for record in runs.items]
        return templates.TemplateResponse(request, "dashboard.html", context)

    return page


for _path, (_module, _section) in PAGES.items():
    router.add_api_route(
        _path, _make_page(_module, _section), methods=["GET"], response_class=Response
    )
