"""The Redis backend's read side: runs, events, the feed, state, queues, jobs, timers and
records.

``RedisReads`` sits between ``RedisConnection`` and ``RedisBackend``: reads (one command or
one pipeline through ``_call``, or a script for the paged lists and the records, which at
most prunes index entries of runs already gone and records already expired) that change no
record, so they need neither the commit machinery nor a wake-up.
"""

from __future__ import annotations

from typing import Any, cast

from flowtide._util.clock import now
from flowtide._util.jsonutil import loads
from flowtide.backends.base import Job, Page, StateItems, Timer
from flowtide.backends.redis import _codec as codec
from flowtide.backends.redis._connection import RedisConnection
from flowtide.events import Event, RunRecord

__all__ = ["RedisReads"]


class RedisReads(RedisConnection):
    # -- runs and events --------------------------------------------------------------------------
    async def read_events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        end = -1 if limit is None else after + limit - 1
        key = self.keys.events(run_id)
        rows = await self._call(lambda: self.client.lrange(key, after, end))
        return [loads(row) for row in cast(list[str], rows)]

    async def read_feed(self, after: int, limit: int = 500) -> list[tuple[int, Event]]:
        start = f"{after + 1}-0"
        feed = self.keys.feed
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self._call(lambda: self.client.xrange(feed, start, "+", count=limit)),
        )
        return [(int(entry_id.split("-", 1)[0]), loads(fields["e"])) for entry_id, fields in rows]

    async def get_run(self, run_id: str) -> RunRecord | None:
        key = self.keys.run(run_id)
        text = await self._call(lambda: self.client.hget(key, "rec"))
        return codec.decode_record(text) if text is not None else None

    async def list_runs(
        self,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        res = await self._script("list_runs", [flow or "", status or "", cursor or "", limit])
        return Page([codec.decode_record(text) for text in res[1:]], res[0] or None)

    # -- state ------------------------------------------------------------------------------------
    async def get_state(self, scope: str, key: str) -> tuple[bool, Any]:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(self.keys.state(scope), key)
            pipe.hget(self.keys.state_expiry(scope), key)
            return await pipe.execute()

        value, expires = await self._call(read)
        if value is None or (expires is not None and float(expires) <= now()):
            return False, None
        return True, loads(value)

    async def state_items(self, scope: str) -> dict[str, Any]:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.state(scope))
            pipe.hgetall(self.keys.state_expiry(scope))
            return await pipe.execute()

        values, expiry = await self._call(read)
        ts = now()
        return {k: loads(v) for k, v in values.items() if k not in expiry or float(expiry[k]) > ts}

    # -- queues and jobs --------------------------------------------------------------------------
    async def queue_counts(self) -> dict[str, dict[str, int]]:
        async def read() -> tuple[list[str], list[dict[str, str]], set[str]]:
            queues = sorted(cast(set[str], await self.client.smembers(self.keys.queues)))
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                pipe.hgetall(self.keys.counts(queue))
            pipe.smembers(self.keys.paused)
            res = await pipe.execute()
            return queues, cast(list[dict[str, str]], res[:-1]), cast(set[str], res[-1])

        queues, counts, paused = await self._call(read)
        out = {
            q: {s: int(n) for s, n in c.items() if int(n)}
            for q, c in zip(queues, counts, strict=True)
        }
        for queue in paused:
            out.setdefault(queue, {})
        return out

    async def completed_last_minute(self) -> dict[str, int]:
        """Jobs completed per queue in about the last minute, from per-minute counters that
        ``finish_job`` keeps (the previous minute weighted by the part still in the window)."""
        ts = now()
        minute = int(ts // 60)
        weight = 1.0 - (ts / 60 - minute)

        async def read() -> tuple[list[str], list[Any]]:
            queues = sorted(cast(set[str], await self.client.smembers(self.keys.queues)))
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                pipe.get(self.keys.done(queue, minute))
                pipe.get(self.keys.done(queue, minute - 1))
            return queues, await pipe.execute()

        queues, res = await self._call(read)
        return {
            q: int(int(res[2 * i] or 0) + weight * int(res[2 * i + 1] or 0))
            for i, q in enumerate(queues)
        }

    async def paused_queues(self) -> set[str]:
        key = self.keys.paused
        members: set[str] = await self._call(lambda: self.client.smembers(key))  # type: ignore[arg-type, return-value]
        return set(members)

    async def get_job(self, job_id: str) -> Job | None:
        key = self.keys.job(job_id)
        h: dict[str, str] = await self._call(lambda: self.client.hgetall(key))  # type: ignore[arg-type, return-value]
        if not h:
            return None
        h["id"] = job_id
        return codec.decode_job(h)

    async def list_jobs(
        self, queue: str, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        res = await self._script("list_jobs", [queue, state or "", cursor or "", limit])
        items = [
            codec.decode_job(dict(zip(flat[::2], flat[1::2], strict=True))) for flat in res[1:]
        ]
        return Page(items, res[0] or None)

    # -- timers -----------------------------------------------------------------------------------
    async def list_timers(self) -> list[Timer]:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=True)  # one snapshot of both keys
            pipe.zrange(self.keys.timers, 0, -1, withscores=True)
            pipe.hgetall(self.keys.timer)
            return await pipe.execute()

        due, data = await self._call(read)
        out = []
        for timer_id, score in due:
            text = data.get(timer_id)
            if text is not None:
                kind, payload = loads(text)
                out.append(Timer(timer_id, float(score), kind, payload))
        return out

    # -- records (scripts: an expired record met is removed; see lua/_records.lua) ----------------
    async def get_record(self, collection: str, key: str) -> Any:
        text = await self._script("records", ["get", collection, key])
        return None if text is None else loads(text)

    async def list_records(
        self, collection: str, limit: int = 100, after: str | None = None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        if limit <= 0:
            return []
        start = ("+" if reverse else "-") if after is None else f"({after}"
        flat = await self._script(
            "records", ["list", collection, limit, start, "1" if reverse else "0"]
        )
        return [(key, loads(text)) for key, text in zip(flat[::2], flat[1::2], strict=True)]

    async def record_collections(self) -> list[str]:
        return sorted(await self._script("records", ["cols", ""]))

    # -- migration --------------------------------------------------------------------------------
    async def export_state(self, scope: str) -> StateItems:
        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=True)  # one snapshot of both keys
            pipe.hgetall(self.keys.state(scope))
            pipe.hgetall(self.keys.state_expiry(scope))
            return await pipe.execute()

        values, expiry = await self._call(read)
        ts = now()
        out: StateItems = {}
        for key, value in values.items():
            expires = float(expiry[key]) if key in expiry else None
            if expires is None or expires > ts:
                out[key] = (loads(value), expires)
        return out

    async def export_records(
        self, collection: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, Any, float | None]]:
        if limit <= 0:
            return []
        start = "-" if after is None else f"({after}"
        flat = await self._script("export_records", [collection, limit, start])
        return [
            (key, loads(text), float(exp) if exp else None)
            for key, text, exp in zip(flat[::3], flat[1::3], flat[2::3], strict=True)
        ]
