"""What the ASGI app keeps per instance: the flowtide App and the streaming settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flowtide.app import App

__all__ = ["ServerState"]


@dataclass(slots=True)
class ServerState:
    app: App
    keepalive: float = 15.0  # seconds of silence before an SSE comment line
    stats_interval: float = 2.0  # how often the events stream looks at queue counts
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def close_streams(self) -> None:
        """End every open SSE stream (server shutdown): they would hold it up forever."""
        self.closing.set()
