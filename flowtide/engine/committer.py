"""Group commit: outcomes that finish while a commit is in flight go out together in the next.

This adds no latency when idle (a lone outcome is committed at once) and turns a burst of
completions into one backend round trip. A failed batch is retried item by item so that one
bad item cannot hold the others back; a backend outage is retried with backoff, never dropped.

With a backend that has the optional ``commit_and_claim`` (Redis), a commit also claims jobs
for the worker's slots that it frees, in the same round trip: ``claim_for(n)`` gives the claim's
arguments for a batch of ``n`` outcomes (or None) and ``claimed(jobs, limit)`` takes what came.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from flowtide.backends.base import Backend, BackendUnavailable, CommitItem, Job
from flowtide.events import Event

__all__ = ["Committer"]

logger = logging.getLogger("flowtide.worker")
MAX_BATCH = 256
# worker, queues, limit, lease, exclude: the arguments of Backend.claim
ClaimArgs = tuple[str, Collection[str] | None, int, float, Collection[str]]


class Committer:
    def __init__(
        self,
        backend: Backend,
        claim_for: Callable[[int], ClaimArgs | None] | None = None,
        claimed: Callable[[list[Job], int], None] | None = None,
    ) -> None:
        self._backend = backend
        self._claim_for = claim_for
        self._claimed = claimed
        both = claim_for is not None and claimed is not None
        self._commit_and_claim: Any = getattr(backend, "commit_and_claim", None) if both else None
        self._pending: list[tuple[CommitItem, asyncio.Future[list[Event]]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="flowtide-committer")

    async def submit(self, item: CommitItem) -> list[Event]:
        fut: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        self._wake.set()
        return await fut

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(
        self, batch: Sequence[tuple[CommitItem, asyncio.Future[list[Event]]]]
    ) -> None:
        try:
            results = await self._with_retry([item for item, _ in batch])
        except Exception:
            if len(batch) == 1:
                raise_into(batch[0][1])
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, fut), events in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(events)

    async def _with_retry(self, items: list[CommitItem]) -> list[list[Event]]:
        delay = 0.05
        warned = False
        while True:
            try:
                return await self._commit_items(items)
            except BackendUnavailable as exc:
                if not warned:
                    logger.warning("backend unavailable, retrying commits: %s", exc)
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _commit_items(self, items: list[CommitItem]) -> list[list[Event]]:
        request = None
        if self._commit_and_claim is not None and self._claim_for is not None:
            request = self._claim_for(len(items))
        if request is None:
            return await self._backend.commit(items)
        assert self._claimed is not None
        jobs: list[Job] = []
        events: list[list[Event]]
        try:
            events, jobs = await self._commit_and_claim(items, *request)
        finally:
            self._claimed(jobs, request[2])  # also releases the slots reserved for the claim
        return events


def raise_into(fut: asyncio.Future[list[Event]]) -> None:
    import sys

    exc = sys.exc_info()[1]
    if not fut.done() and exc is not None:
        fut.set_exception(exc)
