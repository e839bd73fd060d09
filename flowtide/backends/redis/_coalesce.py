"""Coalescing concurrent ``enqueue`` and ``commit`` calls into shared script calls.

Like the worker's group commit: calls made while a script call is in flight queue up and go
out together in the next one; a lone call is sent at once. Each call stays atomic (one script
applies all of a batch), and a failing call never fails the calls coalesced with it. The
coalescers only batch: ``RedisBackend`` gives them the function that makes the script call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence

from flowtide.backends.base import BackendUnavailable, CommitItem, Job
from flowtide.events import Event

__all__ = [
    "COMMIT_BATCH",
    "ENQUEUE_BATCH",
    "ClaimRequest",
    "CommitCoalescer",
    "Committed",
    "EnqueueCoalescer",
]

# claim arguments: worker, queues, limit, lease, exclude
ClaimRequest = tuple[str, Collection[str] | None, int, float, Collection[str]]
Committed = tuple[list[list[Event]], list[Job]]
_Enqueue = tuple[list[Job], "asyncio.Future[list[str]]"]
_Call = tuple[list[CommitItem], "asyncio.Future[Committed]", ClaimRequest | None]
ENQUEUE_BATCH = 5000  # jobs per coalesced enqueue script call
COMMIT_BATCH = 500  # items per coalesced commit script call


class EnqueueCoalescer:
    """``send`` enqueues the jobs of a batch of calls (in order) with one script call and
    returns their ids; ``changed`` is called after each batch that went out."""

    def __init__(
        self, send: Callable[[list[Job]], Awaitable[list[str]]], changed: Callable[[], None]
    ) -> None:
        self._send = send
        self._changed = changed
        self._calls: list[_Enqueue] = []
        self._busy = False
        self.task: asyncio.Task[None] | None = None  # sending the calls queued meanwhile

    async def submit(self, jobs: Sequence[Job]) -> list[str]:
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._calls.append((list(jobs), fut))
        if not self._busy:
            self._busy = True
            await self._batches(once=True)
        return await fut

    async def _batches(self, once: bool) -> None:
        try:
            while self._calls:
                batch: list[_Enqueue] = []
                size = 0
                while self._calls and (not batch or size + len(self._calls[0][0]) <= ENQUEUE_BATCH):
                    item = self._calls.pop(0)
                    batch.append(item)
                    size += len(item[0])
                await self._batch(batch)
                if once:
                    break
        finally:
            if self._calls:
                self.task = asyncio.create_task(self._batches(False))
            else:
                self._busy = False

    async def _batch(self, batch: list[_Enqueue]) -> None:
        try:
            ids = await self._send([job for jobs, _ in batch for job in jobs])
        except Exception as exc:
            if len(batch) > 1:  # one bad call must not fail the calls coalesced with it
                for one in batch:
                    await self._batch([one])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        except BaseException:
            for _, fut in batch:
                if not fut.done():
                    fut.cancel()
            raise
        self._changed()
        pos = 0
        for jobs, fut in batch:
            if not fut.done():
                fut.set_result(ids[pos : pos + len(jobs)])
            pos += len(jobs)


class CommitCoalescer:
    """``send`` commits the items of a batch of calls (in order) with one script call, and
    makes the batch's claim, if any, in the same call; a batch makes one claim at most."""

    def __init__(
        self, send: Callable[[list[CommitItem], ClaimRequest | None], Awaitable[Committed]]
    ) -> None:
        self._send = send
        self._calls: list[_Call] = []
        self._busy = False
        self.task: asyncio.Task[None] | None = None  # sending the calls queued meanwhile

    async def submit(self, items: Sequence[CommitItem], claim: ClaimRequest | None) -> Committed:
        fut: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._calls.append((list(items), fut, claim))
        if not self._busy:
            self._busy = True
            await self._batches(once=True)
        return await fut

    async def _batches(self, once: bool) -> None:
        try:
            while self._calls:
                batch: list[_Call] = []
                size = 0
                claims = 0  # a batch makes one claim at most
                while self._calls and (
                    not batch
                    or (
                        size + len(self._calls[0][0]) <= COMMIT_BATCH
                        and not (claims and self._calls[0][2] is not None)
                    )
                ):
                    call = self._calls.pop(0)
                    batch.append(call)
                    size += len(call[0])
                    claims += call[2] is not None
                await self._batch(batch)
                if once:
                    break
        finally:
            if self._calls:
                self.task = asyncio.create_task(self._batches(False))
            else:
                self._busy = False

    async def _batch(self, batch: list[_Call]) -> None:
        claim = next((c for _, _, c in batch if c is not None), None)
        try:
            results, jobs = await self._send(
                [item for items, _, _ in batch for item in items], claim
            )
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, BackendUnavailable):
                for one in batch:  # a decide that raises fails its own call only
                    await self._batch([one])
                return
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException:
            for _, fut, _ in batch:
                if not fut.done():
                    fut.cancel()
            raise
        pos = 0
        for items, fut, c in batch:
            # jobs claimed for a caller that is gone are not lost: their leases expire
            if not fut.done():
                fut.set_result((results[pos : pos + len(items)], jobs if c is not None else []))
            pos += len(items)
