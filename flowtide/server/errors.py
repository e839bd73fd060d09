"""Every error answers ``{"error": {"code", "message"}}`` with a real status code (DESIGN A8).

Engine exceptions map to: NotFound 404, InvalidInput 422, a conflict 409, a paused trigger 409
(``paused``), an invalid trigger definition 400 (``invalid_trigger``), an await that is no longer
pending 410 (``gone``), a webhook await called with another method 405 (with ``Allow``), a webhook
that fails authentication 401.

Validation errors (422) add ``"errors"``: a list of ``{"loc", "msg", "type"}`` field errors. A
request body that is not valid JSON is a 400, not a 422.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from flowtide.backends.base import BackendUnavailable
from flowtide.engine.awaits import Gone, MethodNotAllowed
from flowtide.engine.orchestrator import Conflict
from flowtide.engine.runs import InvalidInput, NotFound
from flowtide.engine.triggers import Conflict as TriggerConflict
from flowtide.engine.triggers import Paused, TriggerError
from flowtide.engine.webhook_auth import WebhookAuthError
from flowtide.server.responses import json_response

__all__ = ["ApiError", "error_body", "install_error_handlers"]

logger = logging.getLogger("flowtide.server")


class ApiError(Exception):
    """Raised by routes for an answer other than 2xx."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers) if headers else None


def error_body(
    code: str, message: str, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        error["errors"] = list(errors)
    return {"error": error}


def _respond(
    status: int,
    code: str,
    message: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response(error_body(code, message, errors), status, headers)


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def field_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI/pydantic errors as ``{"loc", "msg", "type"}`` (no input echo, no URLs)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in raw
    ]


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _respond(exc.status, exc.code, exc.message, exc.errors, exc.headers)


async def _not_found(_: Request, exc: Exception) -> Response:
    return _respond(404, "not_found", str(exc))


async def _invalid_input(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return _respond(422, "invalid_input", str(exc), exc.errors)


async def _conflict(_: Request, exc: Exception) -> Response:
    return _respond(409, "conflict", str(exc))


async def _paused(_: Request, exc: Exception) -> Response:
    return _respond(409, "paused", str(exc))


async def _invalid_trigger(_: Request, exc: Exception) -> Response:
    return _respond(400, "invalid_trigger", str(exc))


async def _gone(_: Request, exc: Exception) -> Response:
    return _respond(410, "gone", str(exc) or "no longer pending")


async def _method_not_allowed(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, MethodNotAllowed)
    return _respond(405, "method_not_allowed", str(exc), headers={"Allow": exc.allowed})


async def _unauthorized(_: Request, exc: Exception) -> Response:
    return _respond(401, "unauthorized", f"webhook authentication failed: {exc}")


async def _unavailable(_: Request, exc: Exception) -> Response:
    return _respond(503, "backend_unavailable", str(exc))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = "no such route" if exc.detail == "Not Found" else str(exc.detail)
    else:
        message = str(exc.detail)
    headers = getattr(exc, "headers", None)
    return _respond(exc.status_code, _code_for(exc.status_code), message, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error")
            message = "the request body is not valid JSON" + (f": {detail}" if detail else "")
            return _respond(400, "invalid_json", message)
    return _respond(422, "validation_error", "the request is invalid", field_errors(errors))


async def _disconnected(request: Request, exc: Exception) -> Response:
    # The client went away while sending its body: nobody reads this answer, nothing is logged.
    return _respond(400, "client_disconnected", "the client disconnected before its body arrived")


async def _internal(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _respond(500, "internal_error", "internal server error")


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(NotFound, _not_found)
    api.add_exception_handler(InvalidInput, _invalid_input)
    api.add_exception_handler(Conflict, _conflict)
    api.add_exception_handler(TriggerConflict, _conflict)
    api.add_exception_handler(Paused, _paused)
    api.add_exception_handler(TriggerError, _invalid_trigger)
    api.add_exception_handler(Gone, _gone)
    api.add_exception_handler(MethodNotAllowed, _method_not_allowed)
    api.add_exception_handler(WebhookAuthError, _unauthorized)
    api.add_exception_handler(BackendUnavailable, _unavailable)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(ClientDisconnect, _disconnected)
    api.add_exception_handler(Exception, _internal)
