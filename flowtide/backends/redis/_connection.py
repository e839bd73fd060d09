"""The Redis backend's connection: the client and its pool, retries, and the wake-ups.

``RedisConnection`` is the base of ``RedisBackend``: it opens the client (a blocking pool
whose commands hiredis packs) and registers the Lua scripts; ``_call`` runs one operation,
retrying a lost connection with backoff (logged once per outage) for ``retry_for`` seconds
before raising BackendUnavailable. Waiters block on a pub/sub subscription to
``{prefix}wake``, which every change publishes to, so a worker in any process wakes at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from flowtide._util.clock import now
from flowtide.backends._common import Notifier
from flowtide.backends.base import BackendUnavailable
from flowtide.backends.redis._config import RedisOptions, parse_url
from flowtide.backends.redis._scripts import load_scripts
from flowtide.backends.redis.keys import Keys

__all__ = ["RedisConnection"]

logger = logging.getLogger("flowtide.backends.redis")
T = TypeVar("T")
_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
QUIET_AFTER_OUTAGE = 30.0  # connection losses this soon after one are the same outage


class RedisConnection:
    def __init__(self, url: str) -> None:
        self.url = url
        self.options: RedisOptions = parse_url(url)
        self.keys = Keys(self.options.prefix)
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._notifier = Notifier()
        self._generation = 0  # wake-ups received (from any process)
        self._waited_generation = 0
        self._listener: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._quiet_until = 0.0
        self._logged = False
        o = self.options
        self._common = [o.prefix, "", str(o.feed_max), str(o.keep_completed), str(o.keep_failed)]

    # -- connection -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        # A blocking pool: a burst of concurrent calls waits for a free connection instead
        # of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            self.options.redis_url,
            max_connections=self.options.max_connections,
            timeout=None,
            decode_responses=True,
            socket_connect_timeout=self.options.connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 1),
        )
        pool.connection_class = _hiredis_packing(pool.connection_class)
        client = aioredis.Redis.from_pool(pool)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            where = self.options.redis_url
            reason = str(exc).replace("\n", " ")
            raise BackendUnavailable(f"cannot reach Redis at {where}: {reason}") from None
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in load_scripts().items()}
        await self._start_listener()

    async def _start_listener(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self._subscribe(pubsub)
        self._listener = asyncio.create_task(self._listen(pubsub), name="flowtide-redis-wake")

    async def close(self) -> None:
        """Stop the wake-up listener and close the client (``RedisBackend.close`` first
        lets its coalesced calls finish)."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"Redis does not answer: {exc}") from None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendUnavailable("the Redis backend is not open")
        return self._client

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation; while the connection is lost, retry with backoff for
        ``retry_for`` seconds, then raise BackendUnavailable."""
        delay = 0.05
        deadline: float | None = None
        while True:
            try:
                result = await fn()
            except _DOWN as exc:
                if self._client is None:
                    raise BackendUnavailable("the Redis backend is closed") from None
                t = time.monotonic()
                self._lost(exc, t)
                deadline = deadline or t + self.options.retry_for
                if t >= deadline:
                    raise BackendUnavailable(f"Redis unreachable: {exc}") from None
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                continue
            except RedisError as exc:
                if "NOSCRIPT" in str(exc) or "LOADING" in str(exc):
                    await asyncio.sleep(delay)
                    continue
                raise
            if self._down_since is not None:
                self._back()
            return result

    def _lost(self, exc: BaseException, t: float) -> None:
        """An outage is logged once: losses soon after the last one (stale pooled
        connections failing one by one after a restart) belong to the same incident."""
        if self._down_since is not None:
            return
        self._down_since = t
        if t >= self._quiet_until:
            self._logged = True
            logger.warning("lost the connection to Redis (%s); reconnecting with backoff", exc)

    def _back(self) -> None:
        t = time.monotonic()
        if self._logged and self._down_since is not None:
            logger.warning("reconnected to Redis after %.1fs", t - self._down_since)
        self._logged = False
        self._down_since = None
        self._quiet_until = t + QUIET_AFTER_OUTAGE

    async def _script(self, name: str, args: Sequence[Any], ts: float | None = None) -> Any:
        common = list(self._common)
        common[1] = repr(now() if ts is None else ts)
        script = self._scripts[name]
        argv = [*common, *args]
        return await self._call(lambda: script(keys=[], args=argv))

    # -- wake-ups ---------------------------------------------------------------------------------
    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(self.keys.wake)
        # wait for the confirmation, so that a change published after open() is seen
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn = pubsub.connection
            if conn is not None and pubsub.subscribed:
                msg = await pubsub.parse_response(block=False, timeout=0.05)
                if msg is not None and msg[0] == "subscribe":
                    return
            else:
                await asyncio.sleep(0.01)

    async def _listen(self, pubsub: PubSub) -> None:
        delay = 0.05
        while True:
            try:
                async for _ in pubsub.listen():
                    delay = 0.05
                    self._changed()
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError):
                pass
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            self._changed()  # changes may have been missed: let waiters look
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            if self._client is None:
                return
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.wake)
            except (RedisError, OSError):
                continue

    def _changed(self) -> None:
        self._generation += 1
        self._notifier.notify()

    async def wait_for_change(self, timeout: float) -> None:
        """A change seen since the previous call returns at once: a wake-up that arrives
        between a caller's check (say an empty claim) and its wait is not lost."""
        if self._generation != self._waited_generation:
            self._waited_generation = self._generation
            return
        await self._notifier.wait(timeout)
        self._waited_generation = self._generation


def _hiredis_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """The connection class with commands packed by hiredis (C) rather than redis-py's Python
    loop, which was ~15% of a busy worker's CPU time (commit scripts have many arguments).
    The bytes are the same; anything hiredis does not take goes to redis-py's packer."""
    try:
        from hiredis import pack_command
    except ImportError:  # pragma: no cover - hiredis comes with the redis extra
        return cls
    base_pack = cls.pack_command

    def pack(self: AbstractConnection, *args: Any) -> list[bytes]:
        if not (isinstance(args[0], str) and " " in args[0]):
            try:
                return [pack_command(args)]
            except (TypeError, ValueError):
                pass
        return base_pack(self, *args)

    return type(f"HiredisPacking{cls.__name__}", (cls,), {"pack_command": pack})
