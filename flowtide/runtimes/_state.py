"""The state one :class:`~flowtide.runtimes.child.Child` holds, shared by its parts
(process, invocations, channel), which the class assembles."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowtide.runtimes._types import ChildFailed, _Run
from flowtide.runtimes.protocol import MAX_FRAME, FrameDecoder


class _ChildState:
    """A child's configuration and mutable state (see :class:`~flowtide.runtimes.child.Child`)."""

    _ids = itertools.count(1)

    def __init__(
        self,
        runtime: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        max_frame: int = MAX_FRAME,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 10.0,
        start_timeout: float = 20.0,
        max_inflight: int = 1,
        cancel_grace: float = 1.0,
    ) -> None:
        self.runtime, self.argv, self.env, self.cwd = runtime, list(argv), env, cwd
        self.max_frame = max_frame
        self.heartbeat_interval, self.heartbeat_timeout = heartbeat_interval, heartbeat_timeout
        self.start_timeout = start_timeout
        self.max_inflight, self.cancel_grace = max(1, max_inflight), cancel_grace
        self.capacity = 1  # set from the hello: max_inflight if the child is "concurrent"
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.jobs = 0
        self.retiring = False  # the pool sends it no new invocation
        self.hello: dict[str, Any] = {}
        self.failure: ChildFailed | None = None
        self.last_seen = time.monotonic()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.running: dict[str, _Run] = {}
        self._decoder = FrameDecoder(max_frame)
        self._writer: asyncio.WriteTransport | None = None
        self._outq: list[bytes] = []
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self._settling: _Run | None = None
        self._emptied_by: _Run | None = None  # the invocation whose answer left none running
        self._tasks: set[asyncio.Task[Any]] = set()
        self._out_fds: list[int] = []
        self._streams_open = 0
        self._streams_closed = asyncio.Event()
        self._exited: asyncio.Task[int] | None = None
        self._statm = -1
        self._stat = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rss_checked = 0.0  # when the pool last sampled rss_mb()
        self._cpu_mark = -1.0  # CPU seconds at the last cpu_delta()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        proc = self.proc
        return self.failure is None and proc is not None and proc.returncode is None

    @property
    def load(self) -> int:
        return len(self.running)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    if TYPE_CHECKING:  # defined by the parts that come later in the class hierarchy

        def _send(self, message: dict[str, Any]) -> None: ...

        async def kill(self, failure: ChildFailed | None = None) -> None: ...
