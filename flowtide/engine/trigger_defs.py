"""Trigger definitions: checking one (from code or the API) and its stored JSON shape."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pydantic

from flowtide._util.cron import check_cron, zone
from flowtide._util.durations import parse_duration
from flowtide._util.jsonutil import dumps
from flowtide.definitions.triggers import Trigger
from flowtide.engine.runs import RunService

__all__ = [
    "TYPES",
    "TriggerError",
    "code_triggers",
    "definition_hash",
    "normalize",
    "rate",
    "retry_after",
]

TYPES = ("event", "webhook", "schedule", "manual")


class TriggerError(ValueError):
    """An invalid trigger definition (HTTP 400)."""


def _schema_json(schema: Any) -> Any:
    if schema is None or isinstance(schema, dict):
        return schema
    return pydantic.TypeAdapter(schema).json_schema()


def _auth_json(auth: Any) -> dict[str, Any] | None:
    if auth is None:
        return None
    if isinstance(auth, dict):
        return auth
    return {
        "kind": auth.kind,
        "secret_env": auth.secret_env,
        "header": auth.header,
        "algorithm": auth.algorithm,
        "encoding": auth.encoding,
        "prefix": auth.prefix,
    }


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """Check a trigger definition (from code or the API) and return its stored shape."""
    name, kind = doc.get("name"), doc.get("type")
    if not isinstance(name, str) or not name or "/" in name:
        raise TriggerError("a trigger needs a name without '/'")
    if kind not in TYPES:
        raise TriggerError(f"trigger type must be one of {', '.join(TYPES)}, got {kind!r}")
    options = dict(doc.get("options") or {})
    if kind == "schedule":
        cron, every = options.get("cron"), options.get("every")
        if (cron is None) == (every is None):
            raise TriggerError("a schedule needs exactly one of cron or every")
        tz = options.setdefault("tz", "UTC")
        try:
            zone(tz)
            if cron is not None:
                check_cron(cron, tz)
            else:
                options["every"] = parse_duration(every)  # type: ignore[arg-type]
                if options["every"] <= 0:
                    raise ValueError("every must be positive")
        except ValueError as exc:
            raise TriggerError(str(exc)) from None
        options.setdefault("overlap", "skip")
        options.setdefault("catch_up", "none")
        if options["overlap"] not in ("skip", "queue", "replace"):
            raise TriggerError("overlap must be skip, queue or replace")
        if options["catch_up"] not in ("none", "once"):
            raise TriggerError("catch_up must be none or once")
    if kind == "webhook":
        options["method"] = str(options.get("method") or "POST").upper()
        options["auth"] = _check_auth(_auth_json(options.get("auth")))
        _check_idempotency(options.get("idempotency"))
        if options.get("rate_limit"):
            rate(options["rate_limit"])
        options.setdefault("idempotency", None)
        options.setdefault("idempotency_window", 86400.0)
    if kind == "event":
        options["from_emits"] = bool(options.get("from_emits", False))
    subscriptions = {}
    for flow, sub in (doc.get("subscriptions") or {}).items():
        mode = sub.get("mode", "auto") if isinstance(sub, dict) else sub
        if mode not in ("auto", "manual"):
            raise TriggerError(f"subscription mode must be auto or manual, got {mode!r}")
        subscriptions[flow] = {"mode": mode}
    return {
        "name": name,
        "type": kind,
        "description": doc.get("description") or "",
        "options": options,
        "schema": _schema_json(doc.get("schema")),
        "subscriptions": subscriptions,
        "status": "paused" if doc.get("status") == "paused" else "active",
    }


_AUTH_KEYS = {"kind", "secret_env", "header", "algorithm", "encoding", "prefix"}


def _check_auth(auth: dict[str, Any] | None) -> dict[str, Any] | None:
    from flowtide.engine.webhook_auth import KINDS

    if auth is None:
        return None
    if not set(auth) <= _AUTH_KEYS:
        raise TriggerError(f"unknown auth keys: {', '.join(sorted(set(auth) - _AUTH_KEYS))}")
    if auth.get("kind") not in KINDS:
        raise TriggerError(f"auth kind must be one of {', '.join(KINDS)}")
    if not auth.get("secret_env"):
        raise TriggerError("auth needs secret_env: the environment variable holding the secret")
    if auth.get("encoding", "hex") not in ("hex", "base64"):
        raise TriggerError("auth encoding must be hex or base64")
    return auth


def _check_idempotency(spec: Any) -> None:
    if spec is None:
        return
    if not isinstance(spec, str) or not spec.startswith(("header:", "body:")) or spec[-1] == ":":
        raise TriggerError("idempotency must be 'header:<Name>' or 'body:<dot.path>'")


def definition_hash(
    doc: dict[str, Any], keys: tuple[str, ...] = ("type", "options", "schema", "subscriptions")
) -> str:
    return hashlib.sha256(dumps({k: doc.get(k) for k in keys})).hexdigest()[:16]


def code_triggers(service: RunService) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The triggers declared on entry steps, merged by name; and their pydantic schemas."""
    docs: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    for graph in service.registry.flows.values():
        for t in graph.entry.triggers:
            name = t.resolved_name(graph.name)
            doc = docs.get(name)
            if doc is None:
                doc = docs[name] = _from_declaration(t, name)
                if t.schema is not None:
                    models[name] = t.schema
            doc["subscriptions"][graph.name] = {"mode": t.mode}
    return {n: normalize(d) for n, d in docs.items()}, models


def _from_declaration(t: Trigger, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": t.type,
        "options": dict(t.options),
        "schema": t.schema,
        "subscriptions": {},
    }


def rate(spec: str) -> tuple[int, float]:
    """``"100/minute"`` -> (100, 60.0)."""
    units = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
    try:
        count, per = spec.split("/")
        per = per.strip().rstrip("s")
        window = units[per] if per in units else parse_duration(per)
        return int(count), window
    except (ValueError, KeyError):
        raise TriggerError(
            f"invalid rate_limit {spec!r}: use 'N/second|minute|hour|day' or 'N/30s'"
        ) from None


def retry_after(window: float, ts: float) -> int:
    return max(1, math.ceil((math.floor(ts / window) + 1) * window - ts))
