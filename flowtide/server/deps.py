"""Request dependencies: the open :class:`~flowtide.app.App` and bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flowtide.app import App
from flowtide.backends.base import Backend
from flowtide.engine.awaits import AwaitService
from flowtide.engine.runs import RunService
from flowtide.engine.triggers import TriggerService
from flowtide.server.errors import ApiError
from flowtide.server.state import ServerState

__all__ = [
    "AppDep",
    "AwaitsDep",
    "BackendDep",
    "ServiceDep",
    "StateDep",
    "TriggersDep",
    "require_token",
]


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.flowtide
    return state


def get_app(request: Request) -> App:
    return get_state(request).app


def get_service(request: Request) -> RunService:
    try:
        return get_app(request).service
    except RuntimeError:
        raise ApiError(503, "unavailable", "the flowtide app is not open") from None


def get_backend(request: Request) -> Backend:
    return get_service(request).backend


def get_triggers(request: Request) -> TriggerService:
    try:
        return get_app(request).trigger_service
    except RuntimeError:
        raise ApiError(503, "unavailable", "the flowtide app is not open") from None


def get_awaits(request: Request) -> AwaitService:
    return get_triggers(request).awaits


StateDep = Annotated[ServerState, Depends(get_state)]
AppDep = Annotated[App, Depends(get_app)]
ServiceDep = Annotated[RunService, Depends(get_service)]
BackendDep = Annotated[Backend, Depends(get_backend)]
TriggersDep = Annotated[TriggerService, Depends(get_triggers)]
AwaitsDep = Annotated[AwaitService, Depends(get_awaits)]

_bearer = HTTPBearer(auto_error=False, description="server.api_token, when it is set")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless ``Authorization: Bearer <server.api_token>`` (when a token is configured)."""
    expected = get_app(request).config.server.api_token
    if not expected:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or invalid API token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
