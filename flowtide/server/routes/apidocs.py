"""``/api/docs``: interactive API docs served from the package, with no CDN (works offline)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["install"]

ASSETS = "/api/docs/assets"


def install(api: FastAPI) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/api/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="flowtide API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    api.include_router(router)
    api.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="api-docs-assets")
