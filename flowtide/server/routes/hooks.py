"""Public webhook endpoints (outside ``/api``, no bearer token; each trigger has its own auth).

``ANY /hooks/{trigger}`` fires a webhook trigger. In order: the trigger must exist (404) and be
a webhook (400); the method must be the configured one (405 with ``Allow``); the request must
carry a valid signature when the trigger has ``auth`` (401; a missing secret variable is a 500
naming the variable); the trigger must be active (409); the rate limit must have room (429 with
``Retry-After``); the payload must match the schema (422). A delivery id (the ``idempotency``
option, or the auth preset's default) makes a redelivery answer 200 with the original fire,
marked ``"duplicate": true``, without starting anything. The answer to a new delivery, 202
``{"fire_id", "run_ids", "duplicate": false}``, is sent only once the fire is durable.

``ANY /hooks/await/{token}`` resolves a webhook await (by default with POST only: another
method is a 405); 404 for an unknown token, 410 once the await is no longer pending.

The payload: a GET's query parameters (a dict); a JSON body; a form body (a dict, a repeated
field as a list); any other body as text, or base64 when it is not UTF-8.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowtide._util.ids import uuid7
from flowtide._util.jsonutil import dumps_str
from flowtide.backends.base import Backend
from flowtide.definitions.triggers import Auth
from flowtide.engine.await_plan import lookup
from flowtide.engine.trigger_defs import rate, retry_after
from flowtide.engine.triggers import FireRequest, Paused, fires_of
from flowtide.engine.webhook_auth import verify
from flowtide.server.deps import get_awaits, get_triggers
from flowtide.server.errors import ApiError
from flowtide.server.responses import json_response
from flowtide.server.routes.awaits import resolved

__all__ = ["DEFAULT_DELIVERY_ID", "delivery_id", "install", "parse_payload"]

logger = logging.getLogger("flowtide.hooks")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # (HEAD comes with GET)
DUPLICATE_WAIT = 5.0  # how long a redelivery waits for the first delivery's fire record
DEFAULT_DELIVERY_ID = {  # where each provider puts its delivery id
    "stripe": "body:id",
    "github": "header:X-GitHub-Delivery",
    "standard_webhooks": "header:webhook-id",
}


# -- the payload -----------------------------------------------------------------------------
def _form(text: str) -> dict[str, Any]:
    fields = parse_qs(text, keep_blank_values=True, errors="replace")
    return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}


def parse_payload(method: str, headers: Mapping[str, str], query: str, body: bytes) -> Any:
    """The payload of a webhook request (see the module's description)."""
    if method in ("GET", "HEAD"):
        return _form(query)
    if not body:
        return None
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            message = f"the request body is not valid JSON: {exc}"
            raise ApiError(400, "invalid_json", message) from None
    if media == "application/x-www-form-urlencoded":
        return _form(body.decode("utf-8", errors="replace"))
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii")


def delivery_id(
    spec: str | None, auth_kind: str | None, headers: Mapping[str, str], payload: Any
) -> str | None:
    """The delivery id a provider sends with every (re)delivery, or None (no deduplication).

    ``spec``: ``"header:Name"`` or ``"body:dot.path"``; without one, the auth preset's default.
    """
    spec = spec or DEFAULT_DELIVERY_ID.get(auth_kind or "")
    if not spec:
        return None
    source, _, ref = spec.partition(":")
    value: Any = None
    if source == "header":
        value = headers.get(ref)
    elif source == "body":
        value = lookup(ref, payload)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else dumps_str(value)


# -- checks ----------------------------------------------------------------------------------
def _authenticate(name: str, options: dict[str, Any], request: Request, body: bytes) -> None:
    try:
        auth = Auth(**options["auth"])
    except TypeError:
        message = f"webhook {name!r} has invalid auth options (kind and secret_env are needed)"
        raise ApiError(500, "webhook_misconfigured", message) from None
    secret = os.environ.get(auth.secret_env, "")
    if not secret:
        message = (
            f"webhook {name!r} cannot check signatures: "
            f"the environment variable {auth.secret_env} is not set"
        )
        logger.error(message)
        raise ApiError(500, "webhook_misconfigured", message)
    verify(auth, request.headers, body, secret, time.time())  # WebhookAuthError: 401


_rate_of = functools.lru_cache(maxsize=256)(rate)


async def _limit(backend: Backend, name: str, spec: str) -> None:
    """A fixed window per trigger, counted in the backend (shared by every server process)."""
    count, window = _rate_of(spec)
    ts = time.time()
    number = int(ts // window)
    expires = (number + 1) * window + 1.0
    used = await backend.add_to_counter(f"rate:{name}", str(number), 1, expires)
    if used > count:
        raise ApiError(
            429,
            "rate_limited",
            f"webhook {name!r} accepts at most {spec}; try again later",
            headers={"Retry-After": str(retry_after(window, ts))},
        )


async def _recorded(backend: Backend, name: str, fire_id: str) -> dict[str, Any] | None:
    """The fire record ``fire_id``, waiting up to DUPLICATE_WAIT for it to be written."""
    deadline = time.monotonic() + DUPLICATE_WAIT
    while True:
        record: dict[str, Any] | None = await backend.get_record(fires_of(name), fire_id)
        left = deadline - time.monotonic()
        if record is not None or left <= 0:
            return record
        await backend.wait_for_change(min(left, 0.05))


def _accepted(record: dict[str, Any], duplicate: bool = False) -> Response:
    """202 for a new fire; 200 for a redelivery (nothing new was accepted)."""
    body = {"fire_id": record["fire_id"], "run_ids": record["run_ids"], "duplicate": duplicate}
    return json_response(body, 200 if duplicate else 202)


# -- routes ----------------------------------------------------------------------------------
async def await_hook(request: Request) -> Response:
    awaits = get_awaits(request)
    token = request.path_params["token"]
    body = await request.body()
    payload = parse_payload(request.method, request.headers, request.url.query, body)
    events = await awaits.resolve_token(token, request.method, payload)
    return json_response(resolved(events))


async def webhook(request: Request) -> Response:
    triggers = get_triggers(request)
    trigger: str = request.path_params["trigger"]
    doc = await triggers.cached(trigger)  # NotFound: 404
    if doc["type"] != "webhook":
        raise ApiError(
            400,
            "not_a_webhook",
            f"trigger {trigger!r} is a {doc['type']} trigger, not a webhook "
            f"(fire it with POST /api/triggers/{trigger}/fire)",
        )
    options = doc["options"]
    method = options.get("method") or "POST"
    if request.method != method:
        raise ApiError(
            405,
            "method_not_allowed",
            f"webhook {trigger!r} accepts {method} only",
            headers={"Allow": method},
        )
    body = await request.body()
    if options.get("auth"):
        _authenticate(trigger, options, request, body)
    if doc["status"] != "active":
        raise Paused(f"trigger {trigger!r} is paused")
    backend = triggers.backend
    if options.get("rate_limit"):
        await _limit(backend, trigger, options["rate_limit"])
    payload = parse_payload(request.method, request.headers, request.url.query, body)
    triggers.validate(doc, payload)  # InvalidInput: 422, before the delivery id is taken
    auth_kind = (options.get("auth") or {}).get("kind")
    delivery = delivery_id(options.get("idempotency"), auth_kind, request.headers, payload)
    if delivery is None:
        fire = FireRequest(payload, "webhook")
        return _accepted(await triggers.fire(trigger, fire, doc))

    # Claim the delivery id for a fire id before firing: a concurrent redelivery reads it.
    fire_id, ts = uuid7(), time.time()
    window = float(options.get("idempotency_window") or 86400.0)
    claim = {"fire_id": fire_id, "ts": ts}
    earlier = await backend.put_record(
        f"idem:{trigger}", delivery, claim, expires_at=ts + window, only_new=True
    )
    if earlier is None:
        fire = FireRequest(payload, "webhook", fire_id=fire_id, ts=ts, delivery_id=delivery)
        return _accepted(await triggers.fire(trigger, fire, doc))
    record = await _recorded(backend, trigger, earlier["fire_id"])
    if record is None:
        # The first delivery claimed the id but never recorded its fire (its process died).
        # Fire with its fire id and time: the runs' ids derive from both, so the runs it may
        # have started are not started again, and the fire is recorded once.
        fire = FireRequest(
            payload,
            "webhook",
            fire_id=earlier["fire_id"],
            ts=float(earlier["ts"]),
            delivery_id=delivery,
        )
        record = await triggers.fire(trigger, fire, doc)
    return _accepted(record, duplicate=True)


def install(api: FastAPI) -> None:
    """Mount the hooks ahead of every other route, as plain Starlette routes: no dependency
    injection or body validation on the hot path (webhooks read and check their own bodies);
    the OpenAPI document describes them all the same."""
    routes = [
        Route("/hooks/await/{token}", await_hook, methods=METHODS, name="await_hook"),
        Route("/hooks/{trigger}", webhook, methods=METHODS, name="webhook"),
    ]
    api.router.routes[:0] = routes
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = build()
            schema["paths"].update(_openapi_paths())
        return api.openapi_schema  # type: ignore[return-value]

    api.openapi = openapi  # type: ignore[method-assign]


def _operation(
    summary: str, description: str, param: str, codes: dict[str, str], method: str
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["hooks"],
        "summary": summary,
        "description": description,
        "operationId": f"{param}_hook_{method}",
        "parameters": [
            {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {code: {"description": text} for code, text in codes.items()},
    }
    if method != "get":
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "*/*": {"schema": {"type": "string"}},
            },
        }
    return op


def _openapi_paths() -> dict[str, Any]:
    trigger_codes = {
        "202": "fired: {fire_id, run_ids, duplicate: false}",
        "200": "a redelivery (same delivery id): the original {fire_id, run_ids, duplicate: true}",
        "400": "not a webhook trigger, or a body that is not valid JSON",
        "401": "missing or invalid signature",
        "404": "unknown trigger",
        "405": "another method than the trigger's (see Allow)",
        "409": "the trigger is paused",
        "422": "the payload does not match the trigger's schema",
        "429": "rate limited (see Retry-After)",
        "500": "the secret's environment variable is not set",
    }
    await_codes = {
        "200": "resolved: {await_id, run_id, status}",
        "404": "unknown token",
        "405": "another method than the await's (see Allow)",
        "410": "the await is no longer pending",
        "422": "the payload does not match the await's schema",
    }
    trigger_text = (
        "Public (no bearer token; the trigger's own auth). The payload is the JSON or form "
        "body, another body as text (base64 if not UTF-8), or a GET's query parameters."
    )
    await_text = "Public; the token in the await's URL is unguessable."
    return {
        "/hooks/{trigger}": {
            m: _operation("Fire a webhook trigger", trigger_text, "trigger", trigger_codes, m)
            for m in ("post", "get", "put", "patch", "delete")
        },
        "/hooks/await/{token}": {
            m: _operation("Resolve a webhook await", await_text, "token", await_codes, m)
            for m in ("post", "get", "put", "patch", "delete")
        },
    }
