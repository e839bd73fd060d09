"""The protocol channel of a child: the batched frame writer, the frame reader and its
dispatch (answers, logs, hello, context requests), and the heartbeat watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import Any

from flowtide.runtimes._runs import _Invocations
from flowtide.runtimes._types import ChildFailed, Outcome, _handler_outcome
from flowtide.runtimes.protocol import (
    CONTEXT_REQUESTS,
    PROTOCOL_VERSION,
    ProtocolError,
    encode,
    error_body,
)

logger = logging.getLogger("flowtide.runtimes")


class _Channel(_Invocations):
    """Speaks the protocol with the child over its two extra pipes."""

    # -- watchdog --------------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        """While invocations run, a child silent for ``heartbeat_timeout`` is killed."""
        tick = max(min(self.heartbeat_interval, self.heartbeat_timeout / 4), 0.01)
        while self.failure is None:
            await asyncio.sleep(tick)
            if self.running and time.monotonic() - self.last_seen > self.heartbeat_timeout:
                await self.kill(
                    ChildFailed(
                        "ChildUnresponsive",
                        f"the {self.runtime} child (pid {self.pid}) "
                        f"sent no heartbeat for {self.heartbeat_timeout:g}s and was killed",
                    )
                )
                return

    # -- channel -------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        """Queue a frame; the queue is written once per event-loop iteration."""
        if self._writer is None or self._writer.is_closing():
            raise ChildFailed("ChildCrashed", "the protocol channel is closed")
        data = encode(message, self.max_frame)
        if not self._outq:
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        self._outq.append(data)

    def _flush(self) -> None:
        queue, self._outq = self._outq, []
        if self._writer is not None and not self._writer.is_closing() and queue:
            self._writer.write(queue[0] if len(queue) == 1 else b"".join(queue))

    def _on_frames(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            self._violation(exc)
            return
        for message in frames:
            try:
                self._dispatch(message)
            except ProtocolError as exc:
                self._violation(exc)
                return

    def _violation(self, exc: ProtocolError) -> None:
        failure = ChildFailed(
            exc.type, f"protocol violation by the {self.runtime} child (pid {self.pid}): {exc}"
        )
        if self.failure is None:
            self.failure = failure
        logger.warning("%s", failure)
        self._fail_running()
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(failure)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "result" or kind == "error":
            run = self.running.get(str(message.get("id")))
            if run is None:
                return  # a late answer to an invocation that already ended
            if kind == "result":
                outcome = Outcome(True, value=message.get("value"))
            else:
                body = message.get("error")
                if not isinstance(body, dict):
                    raise ProtocolError("an 'error' frame needs an 'error' object")
                outcome = _handler_outcome(body)
            if run.timed_out:
                outcome = self._timeout(run, killed=False)
            self._complete(run, outcome)
            return
        if kind == "heartbeat":
            return
        if kind == "log":
            run = self.running.get(str(message.get("invoke")))
            fields = message.get("fields")
            fields = fields if isinstance(fields, dict) else {}
            level, text = str(message.get("level", "info")), str(message.get("message", ""))
            if run is not None and not run.abandoned:
                run.host.log(level, text, fields)
            else:
                logger.info("%s child %d: %s %s", self.runtime, self.pid, text, fields or "")
            return
        if kind == "hello":
            self._on_hello(message)
            return
        req_id = message.get("id")
        if kind in CONTEXT_REQUESTS:
            if req_id is None:
                raise ProtocolError(f"a {kind!r} request needs an 'id'")
            self._background(self._answer(kind, message))
        elif req_id is not None:
            self._reply_error(req_id, "UnknownRequest", f"unknown request type {kind!r}")

    def _on_hello(self, message: dict[str, Any]) -> None:
        req_id = message.get("id")
        if self._hello is None or self._hello.done() or req_id is None:
            raise ProtocolError("an unexpected 'hello'")
        if message.get("protocol") != PROTOCOL_VERSION:
            text = (
                f"the {self.runtime} child speaks protocol version {message.get('protocol')!r}; "
                f"this worker speaks version {PROTOCOL_VERSION}"
            )
            self._reply_error(req_id, "VersionMismatch", text)
            self._hello.set_exception(ChildFailed("VersionMismatch", text, retryable=False))
            return
        capabilities = message.get("capabilities") or ()
        welcome = {
            "protocol": PROTOCOL_VERSION,
            "max_frame": self.max_frame,
            "heartbeat_ms": int(self.heartbeat_interval * 1000),
            "max_inflight": self.max_inflight if "concurrent" in capabilities else 1,
        }
        self._send({"type": "result", "id": req_id, "value": welcome})
        self._hello.set_result(message)

    async def _answer(self, kind: str, message: dict[str, Any]) -> None:
        req_id = message["id"]
        run = self.running.get(str(message.get("invoke")))
        if run is None or run.timed_out or run.abandoned:
            self._reply_error(
                req_id, "NotInvoking", f"invocation {message.get('invoke')!r} is not running"
            )
            return
        try:
            value = await run.host.request(kind, message)
        except Exception as exc:
            self._reply_error(req_id, "ContextError", f"{type(exc).__name__}: {exc}")
            return
        try:
            self._send({"type": "result", "id": req_id, "value": value})
        except ProtocolError as exc:
            self._reply_error(req_id, exc.type, str(exc))
        except ChildFailed:
            pass

    def _reply_error(self, req_id: Any, type: str, text: str) -> None:
        with contextlib.suppress(ChildFailed, ProtocolError):
            self._send({"type": "error", "id": req_id, "error": error_body(type, text)})

    def _on_channel_eof(self) -> None:
        pass  # the exit watcher reports the crash with its exit status
