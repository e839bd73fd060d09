"""The parent <-> child protocol, version 1: framing, message names, typed errors.

Specified in ``docs/protocol.md``. Frames are UTF-8 JSON objects, one per line (NDJSON), on a
dedicated pipe pair; a frame longer than the agreed maximum is a protocol error, never a hang.
This module is pure: no processes, no event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "CONTEXT_REQUESTS",
    "ENV_FD_IN",
    "ENV_FD_OUT",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "ProtocolError",
    "encode",
    "error_body",
]

PROTOCOL_VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
# The child reads frames from the fd named by ENV_FD_IN and writes frames to ENV_FD_OUT.
ENV_FD_IN = "FLOWTIDE_PROTOCOL_FD_IN"
ENV_FD_OUT = "FLOWTIDE_PROTOCOL_FD_OUT"
ENV_MAX_FRAME = "FLOWTIDE_PROTOCOL_MAX_FRAME"

# Requests a child may send while an invocation runs; each names the invocation in "invoke".
CONTEXT_REQUESTS = frozenset(
    {
        "state.get",
        "state.set",
        "state.delete",
        "state.items",
        "emit",
        "flows.start",
        "flows.cancel",
    }
)

# Typed protocol errors (the "type" of an error body). Handler errors carry the language's own
# exception/error class name instead.
ERROR_TYPES = (
    "ProtocolError",  # garbage on the channel, a frame that is not a JSON object, missing fields
    "FrameTooLarge",  # a frame above the agreed maximum
    "VersionMismatch",  # the handshake named a protocol version the other side does not speak
    "UnknownRequest",  # a request type the receiver does not implement
    "NotInvoking",  # a context request naming an invocation that is not running
    "ContextError",  # the host could not perform a context request (bad key, unknown flow...)
    "HandlerNotFound",  # the handler's module, file or export does not exist
    "NotSerializable",  # a value that cannot be encoded as JSON
)


class ProtocolError(Exception):
    """A violation of the protocol: ``type`` is one of :data:`ERROR_TYPES`."""

    def __init__(self, message: str, type: str = "ProtocolError") -> None:
        super().__init__(message)
        self.type = type


_ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def encode(message: dict[str, Any], max_frame: int = MAX_FRAME) -> bytes:
    """One frame: compact JSON plus ``\\n``. orjson never emits a raw newline inside JSON."""
    try:
        data = orjson.dumps(message, option=_ENCODE_OPTIONS)
    except TypeError as exc:
        raise ProtocolError(f"value is not JSON-serializable: {exc}", "NotSerializable") from None
    if len(data) > max_frame + 1:
        raise ProtocolError(
            f"a {message.get('type', '?')!r} frame of {len(data) - 1} bytes exceeds the maximum "
            f"frame size of {max_frame} bytes",
            "FrameTooLarge",
        )
    return data


def error_body(type: str, message: str, stack: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"type": type, "message": message}
    if stack:
        body["stack"] = stack
    return body


@dataclass(slots=True)
class FrameDecoder:
    """Reassembles frames from arbitrary chunks; raises :class:`ProtocolError` on garbage."""

    max_frame: int = MAX_FRAME
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        buf = self._buffer
        if not buf and chunk.endswith(b"\n"):  # the usual case: whole frames only
            lines = chunk.split(b"\n")
            lines.pop()
            return [self._parse(line) for line in lines]
        start = len(buf)
        buf += chunk
        frames: list[dict[str, Any]] = []
        pos = 0
        while True:
            end = buf.find(b"\n", max(pos, start))
            if end < 0:
                break
            frames.append(self._parse(bytes(buf[pos:end])))
            pos = end + 1
            start = pos
        if pos:
            del buf[:pos]
        if len(buf) > self.max_frame:
            raise ProtocolError(
                f"a frame exceeds the maximum frame size of {self.max_frame} bytes "
                f"({len(buf)} bytes received without a newline)",
                "FrameTooLarge",
            )
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def _parse(self, line: bytes) -> dict[str, Any]:
        if len(line) > self.max_frame:
            raise ProtocolError(
                f"a frame of {len(line)} bytes exceeds the maximum frame size of "
                f"{self.max_frame} bytes",
                "FrameTooLarge",
            )
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            preview = line[:80].decode("utf-8", "replace")
            raise ProtocolError(
                f"the channel carried a frame that is not JSON: {preview!r}"
            ) from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            preview = line[:80].decode("utf-8", "replace")
            raise ProtocolError(f"a frame is not a JSON object with a 'type': {preview!r}")
        return message
