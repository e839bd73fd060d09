"""Routes of DESIGN A8 whose features arrive with later issues: triggers, schedules, awaits.

They answer 501 so that clients get a clear message instead of a 404. They are left out of
the OpenAPI document; replace this module's routes as each feature lands.
"""

from __future__ import annotations

from fastapi import APIRouter

from flowtide.server.errors import ApiError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_ROUTES: list[tuple[str, list[str]]] = [
    ("/triggers", ["GET", "POST"]),
    ("/triggers/{name}", ["GET", "PATCH", "DELETE"]),
    ("/triggers/{name}/fire", ["POST"]),
    ("/triggers/{name}/pause", ["POST"]),
    ("/triggers/{name}/resume", ["POST"]),
    ("/triggers/{name}/fires", ["GET"]),
    ("/triggers/{name}/fires/{fire_id}/replay", ["POST"]),
    ("/schedules", ["GET"]),
    ("/awaits", ["GET"]),
    ("/awaits/{await_id}/resolve", ["POST"]),
]


async def not_yet_available() -> None:
    raise ApiError(501, "not_implemented", "not yet available")


for _path, _methods in _ROUTES:
    router.add_api_route(_path, not_yet_available, methods=_methods)
