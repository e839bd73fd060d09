"""Response classes: JSON encoded once with orjson, and a non-buffered Server-Sent Events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from flowtide._util.jsonutil import dumps

__all__ = ["SSE_HEADERS", "EventStreamResponse", "JSONResponse", "json_response"]

SSE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass events through as they are written
    "Connection": "keep-alive",
}


class JSONResponse(Response):
    """``application/json`` rendered with orjson (datetimes, pydantic models, numpy arrays)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=headers)


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that is never buffered and that stops its generator
    as soon as the client disconnects, whatever ASGI spec version the server speaks."""

    def __init__(self, content: AsyncIterator[bytes], status_code: int = 200) -> None:
        super().__init__(
            content, status_code=status_code, headers=SSE_HEADERS, media_type="text/event-stream"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                try:
                    await self.stream_response(send)
                except OSError:
                    pass  # the connection is gone
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()
