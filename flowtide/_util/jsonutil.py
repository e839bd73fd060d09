"""JSON encoding on the hot path (orjson), with a clear error for values it cannot encode."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["NotSerializable", "dumps", "dumps_str", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class NotSerializable(TypeError):
    """A value that cannot be stored as JSON."""


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic models
        return dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise NotSerializable(f"value is not JSON-serializable: {exc}") from None


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
