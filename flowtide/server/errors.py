"""Every error answers ``{"error": {"code", "message"}}`` with a real status code (DESIGN A8).

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
from starlette.responses import Response

from flowtide.backends.base import BackendUnavailable
from flowtide.engine.orchestrator import Conflict
from flowtide.engine.runs import InvalidInput, NotFound
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


async def _internal(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _respond(500, "internal_error", "internal server error")


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(NotFound, _not_found)
    api.add_exception_handler(InvalidInput, _invalid_input)
    api.add_exception_handler(Conflict, _conflict)
    api.add_exception_handler(BackendUnavailable, _unavailable)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(Exception, _internal)
