"""Connection settings from the URL, error mapping, and the LISTEN connection.

URL: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?schema=flowtide&pool_size=10``. flowtide's
own query parameters (``schema``, ``pool_size``, ``pool_timeout``, ``poll`` and the retention
policy's, see ``retention``) are taken out; any other parameter (``sslmode``...) goes to the
driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from flowtide.backends.base import BackendUnavailable
from flowtide.backends.postgres.retention import Policy, parse_policy

__all__ = ["Listener", "Settings", "is_connection_error", "is_retryable", "parse_url"]

logger = logging.getLogger("flowtide.postgres")
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_OWN = {
    *("schema", "pool_size", "pool_timeout", "poll"),
    *("retain_jobs", "retain_runs", "retention_batch", "retention_interval", "retention_vacuum"),
}


@dataclass(frozen=True, slots=True)
class Settings:
    dsn: str  # the URL without flowtide's own parameters
    schema: str = "flowtide"
    pool_size: int = 10
    pool_timeout: float = 10.0  # waiting longer than this for a connection: BackendUnavailable
    poll: float = 1.0  # fallback wake-up period while the LISTEN connection is down
    retention: Policy = field(default_factory=Policy)

    @property
    def channel(self) -> str:
        return f"flowtide_{self.schema}".lower()

    @property
    def application_name(self) -> str:
        """Names this schema's connections: the feed waits only for their transactions."""
        return f"flowtide:{self.schema}"[:63]

    @property
    def server_settings(self) -> dict[str, str]:
        return {"search_path": f'"{self.schema}"', "application_name": self.application_name}

    @property
    def planned_settings(self) -> dict[str, str]:
        """The settings of the connections that claim and commit batches (see
        ``PostgresBackend.open``): every statement is planned for its parameters."""
        return {**self.server_settings, "plan_cache_mode": "force_custom_plan"}

    def safe_url(self) -> str:
        """The URL without a password, for messages."""
        parts = urlsplit(self.dsn)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))


def parse_url(url: str) -> Settings:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise BackendUnavailable(f"backend URL {url!r}: not a postgresql:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN}
    rest = [(k, v) for k, v in query if k not in _OWN]
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    schema = own.get("schema") or "flowtide"
    if not _SCHEMA.match(schema):
        raise BackendUnavailable(
            f"backend URL {url!r}: schema {schema!r} must be letters, digits and _ (<= 41)"
        )
    try:
        return Settings(
            dsn=dsn,
            schema=schema,
            pool_size=max(1, int(own.get("pool_size", 10))),
            pool_timeout=float(own.get("pool_timeout", 10.0)),
            poll=float(own.get("poll", 1.0)),
            retention=parse_policy(own),
        )
    except ValueError as exc:
        raise BackendUnavailable(f"backend URL {url!r}: {exc}") from None


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # e.g. resetting a connection the server dropped
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
)


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECTION_ERRORS)


def is_retryable(exc: BaseException) -> bool:
    """Conflicts between transactions: the whole transaction can run again."""
    return isinstance(
        exc, asyncpg.exceptions.DeadlockDetectedError | asyncpg.exceptions.SerializationError
    )


def unavailable(settings: Settings, exc: BaseException) -> BackendUnavailable:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return BackendUnavailable(f"postgresql {settings.safe_url()}: {text}")


class Listener:
    """One connection that LISTENs on the schema's channel and calls ``wake`` on every
    notification. A lost connection is re-established with backoff; ``wake`` is also called
    on every reconnect (something may have changed meanwhile) and every ``settings.poll``
    seconds while disconnected, so no wake-up is missed for long."""

    def __init__(self, settings: Settings, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.wake = wake
        self.connected = asyncio.Event()
        self.server_pid: int | None = None  # of the LISTEN connection, while it is up
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="flowtide-pg-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _on_notify(self, *args: Any) -> None:
        self.wake()

    async def _run(self) -> None:
        delay = 0.05
        first = True
        while True:
            con: asyncpg.Connection | None = None
            try:
                con = await asyncpg.connect(
                    self.settings.dsn, server_settings=self.settings.server_settings, timeout=5
                )
                lost = asyncio.Event()
                con.add_termination_listener(functools.partial(_set, lost))
                await con.add_listener(self.settings.channel, self._on_notify)
                self.server_pid = con.get_server_pid()
                self.connected.set()
                if not first:
                    logger.info("LISTEN connection re-established")
                    self.wake()
                first, delay = False, 0.05
                await self._watch(con, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set() or first:
                    logger.warning("LISTEN connection lost: %s", exc)
                first = False
            finally:
                self.connected.clear()
                self.server_pid = None
                if con is not None:
                    con.terminate()
            # down: wake waiters now and every `poll` seconds until reconnected
            self.wake()
            await asyncio.sleep(min(delay, self.settings.poll))
            delay = min(delay * 2, 5.0)

    async def _watch(self, con: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost; a quiet dead socket is found by a ping."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), 5.0)
            if lost.is_set() or con.is_closed():
                raise ConnectionError("the server closed the LISTEN connection")
            await con.fetchval("SELECT 1", timeout=5.0)


def _set(event: asyncio.Event, *args: Any) -> None:
    event.set()
