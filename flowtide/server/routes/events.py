"""``/api/events/stream``: every run's lifecycle events and queue stats changes, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from flowtide.server.deps import ServiceDep, StateDep
from flowtide.server.responses import EventStreamResponse
from flowtide.server.sse import feed_head, feed_stream, parse_cursor

__all__ = ["router"]

router = APIRouter(prefix="/events", tags=["events"])


@router.get(
    "/stream",
    summary="Server-Sent Events: lifecycle events of every run, and `stats` on changes",
    description=(
        "Each lifecycle event has `id: <global cursor>`, `event: <type>` and the event as "
        "`data`. Without `Last-Event-ID` (or `after`) the stream starts at the current end "
        "of the feed. A `stats` event (no id) carries the queue overview when it changed."
    ),
    response_class=EventStreamResponse,
)
async def stream_events(
    state: StateDep,
    service: ServiceDep,
    after: Annotated[int | None, Query(ge=0, description="start after this cursor")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    start = parse_cursor(last_event_id, "Last-Event-ID")
    if start is None:
        start = after if after is not None else await feed_head(service.backend)
    return EventStreamResponse(feed_stream(state, service.backend, service.registry, start))
