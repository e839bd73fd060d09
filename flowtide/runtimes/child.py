"""One child process speaking the protocol: spawn, handshake, invoke, watchdog, kill, reap.

The protocol runs on two extra pipes (parent -> child, child -> parent) whose fd numbers the
child finds in its environment, so the child's stdout and stderr stay free: they are read line
by line and handed to the running invocation's host as output (log events).

A child runs up to ``capacity`` invocations at once (``max_inflight``, when its hello names the
``concurrent`` capability; otherwise one). Every message is tagged with an invocation id; frames
to the child are batched into one write per event-loop iteration. Fault semantics:

- the child exits, is killed, stops sending heartbeats or breaks the protocol: every invocation
  in flight on it fails (``ChildCrashed``, ``ChildUnresponsive``, ``ProtocolError``...), each one
  retried per its own policy, and the child is never reused;
- one invocation passes its deadline: the parent sends ``cancel`` for it and waits
  ``cancel_grace`` seconds for the child's answer; the attempt fails with ``Timeout`` either way,
  but only a child that does not answer in time is killed (failing the others in flight).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flowtide.runtimes._io import _describe_exit, _Lines, _pending_bytes, _Reader
from flowtide.runtimes.protocol import (
    CONTEXT_REQUESTS,
    ENV_FD_IN,
    ENV_FD_OUT,
    ENV_MAX_FRAME,
    MAX_FRAME,
    PROTOCOL_VERSION,
    FrameDecoder,
    ProtocolError,
    encode,
    error_body,
)

__all__ = ["Child", "ChildFailed", "Host", "Invocation", "Outcome"]

logger = logging.getLogger("flowtide.runtimes")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class Host(Protocol):
    """What the parent offers the child during one invocation (implemented by the engine)."""

    async def request(self, type: str, message: dict[str, Any]) -> Any: ...

    def log(self, level: str, message: str, fields: dict[str, Any]) -> None: ...

    def output(self, stream: str, line: str) -> None: ...


@dataclass(slots=True)
class Invocation:
    handler: str
    input: Any
    context: dict[str, Any]
    timeout: float | None = None


@dataclass(slots=True)
class Outcome:
    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True


class ChildFailed(Exception):
    """The child cannot be used any more (it crashed, hung or broke the protocol)."""

    def __init__(self, type: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.type, self.retryable = type, retryable

    def outcome(self) -> Outcome:
        return Outcome(False, error=error_body(self.type, str(self)), retryable=self.retryable)


class _Run:
    """One invocation in flight on a child."""

    __slots__ = ("abandoned", "deadline", "fut", "grace", "host", "id", "timed_out", "timeout")

    def __init__(
        self, id: str, host: Host, fut: asyncio.Future[Outcome], timeout: float | None
    ) -> None:
        self.id, self.host, self.fut, self.timeout = id, host, fut, timeout
        self.deadline: asyncio.TimerHandle | None = None
        self.grace: asyncio.TimerHandle | None = None
        self.timed_out = False  # the deadline passed and ``cancel`` was sent
        self.abandoned = False  # the awaiting task was cancelled (the worker is stopping)


class Child:
    """A child process; runs up to :attr:`capacity` invocations at once."""

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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._out_fds: list[int] = []
        self._streams_open = 0
        self._streams_closed = asyncio.Event()
        self._exited: asyncio.Task[int] | None = None
        self._statm = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rss_checked = 0.0  # when the pool last sampled rss_mb()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        proc = self.proc
        return self.failure is None and proc is not None and proc.returncode is None

    @property
    def load(self) -> int:
        return len(self.running)

    def rss_mb(self) -> float:
        """The child's resident memory (0 if unknown); one ``pread`` of a kept-open statm."""
        try:
            if self._statm < 0:
                self._statm = os.open(f"/proc/{self.pid}/statm", os.O_RDONLY)
            pages = int(os.pread(self._statm, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * _PAGE / (1024 * 1024)

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        env = dict(os.environ if self.env is None else self.env)
        env[ENV_FD_IN], env[ENV_FD_OUT] = str(p2c_r), str(c2p_w)
        env[ENV_MAX_FRAME] = str(self.max_frame)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(p2c_r, c2p_w),
                env=env,
                cwd=self.cwd,
                start_new_session=True,  # a terminal's Ctrl-C is the parent's business
            )
        except OSError as exc:
            for fd in (p2c_r, p2c_w, c2p_r, c2p_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            raise ChildFailed(
                "ChildStartFailed",
                f"cannot start the {self.runtime} child {self.argv[0]!r}: {exc}",
                retryable=False,
            ) from None
        for fd in (p2c_r, c2p_w, out_w, err_w):
            os.close(fd)
        self.pid = self.proc.pid
        self._exited = asyncio.create_task(self.proc.wait())
        self._hello = loop.create_future()
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(p2c_w, "wb", 0))
        await loop.connect_read_pipe(
            lambda: _Reader(self._on_frames, self._on_channel_eof), os.fdopen(c2p_r, "rb", 0)
        )
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            await self._read_output(fd, stream)
        waiter = asyncio.ensure_future(self._wait_exit_then_fail())
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            futures: set[asyncio.Future[Any]] = {self._hello, waiter}
            done, _ = await asyncio.wait(
                futures, timeout=self.start_timeout, return_when="FIRST_COMPLETED"
            )
            if self._hello.done():
                self.hello = self._hello.result()
                capabilities = self.hello.get("capabilities") or ()
                if "concurrent" in capabilities:
                    self.capacity = self.max_inflight
                self._background(self._watchdog())
                self._exited.add_done_callback(lambda _: self._background(self._on_exit()))
                return
            if waiter in done:
                raise waiter.exception() or ChildFailed("ChildCrashed", "child exited")
            raise ChildFailed(
                "ChildStartFailed",
                f"the {self.runtime} child (pid {self.pid}) sent no hello within "
                f"{self.start_timeout:g}s{self._tail()}",
            )
        except BaseException:
            await self.kill()
            raise
        finally:
            waiter.cancel()

    async def _read_output(self, fd: int, stream: str) -> None:
        lines = _Lines(lambda line: self._on_output(stream, line))
        self._out_fds.append(fd)
        self._streams_open += 1
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: _Reader(lines.feed, lambda: self._on_stream_eof(lines)),
            os.fdopen(fd, "rb", 0),
        )

    async def _wait_exit_then_fail(self) -> None:
        assert self._exited is not None
        code = await asyncio.shield(self._exited)
        await self._settle_streams()
        raise ChildFailed(
            "ChildCrashed",
            f"the {self.runtime} child process (pid {self.pid}) {_describe_exit(code)} "
            f"before the handshake{self._tail()}",
        )

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, grace: float = 2.0) -> None:
        """Ask an idle child to exit; kill it if it has not within ``grace`` seconds."""
        if self.proc is None or self.proc.returncode is not None:
            await self._reap()
            return
        with contextlib.suppress(Exception):
            self._send({"type": "shutdown", "grace_ms": int(grace * 1000)})
        assert self._exited is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), grace)
        except TimeoutError:
            await self.kill()
        await self._reap()

    async def kill(self, failure: ChildFailed | None = None) -> None:
        """SIGKILL the child's whole process group and reap it; every invocation still in
        flight fails with ``failure`` (default: the child's own failure, or ``ChildCrashed``)."""
        if failure is not None and self.failure is None:
            self.failure = failure
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            if self.running and self.failure is None:
                self.failure = ChildFailed(
                    "ChildCrashed", f"the {self.runtime} child (pid {self.pid}) was stopped"
                )
        self._fail_running()
        await self._reap()

    async def _reap(self) -> None:
        if self._exited is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._exited), 10)
        if self._writer is not None:
            self._writer.close()
        if self._statm >= 0:
            os.close(self._statm)
            self._statm = -1
        self._fail_running()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    # -- invocations -----------------------------------------------------------------------------
    async def invoke(self, inv: Invocation, host: Host) -> Outcome:
        """Run one invocation; never raises except on cancellation."""
        if not self.alive:
            failure = self.failure or ChildFailed(
                "ChildCrashed", f"the {self.runtime} child (pid {self.pid}) is gone"
            )
            return failure.outcome()
        loop = self._loop
        assert loop is not None
        self.jobs += 1
        inv_id = f"i{next(self._ids)}"
        message: dict[str, Any] = {
            "type": "invoke",
            "id": inv_id,
            "handler": inv.handler,
            "input": inv.input,
            "context": inv.context,
        }
        if inv.timeout is not None:
            message["deadline_ms"] = int(inv.timeout * 1000)
        try:
            self._send(message)
        except ProtocolError as exc:
            return Outcome(False, error=error_body(exc.type, str(exc)), retryable=False)
        except ChildFailed as exc:
            return exc.outcome()
        if not self.running:
            self.last_seen = time.monotonic()
            self.stderr_tail.clear()
        run = _Run(inv_id, host, loop.create_future(), inv.timeout)
        self.running[inv_id] = run
        if inv.timeout is not None:
            run.deadline = loop.call_later(inv.timeout, self._on_deadline, run)
        try:
            outcome = await run.fut
        except asyncio.CancelledError:
            if inv_id in self.running:
                self._abandon(run, "the worker is stopping")
            raise
        if not self.running and self.failure is None:
            await self._settle_output(run)
        return outcome

    def _complete(self, run: _Run, outcome: Outcome) -> None:
        self.running.pop(run.id, None)
        for handle in (run.deadline, run.grace):
            if handle is not None:
                handle.cancel()
        if not run.fut.done():
            run.fut.set_result(outcome)

    def _fail_running(self) -> None:
        if not self.running:
            return
        failure = self.failure or ChildFailed(
            "ChildCrashed", f"the {self.runtime} child (pid {self.pid}) is gone"
        )
        for run in list(self.running.values()):
            self._complete(run, failure.outcome())

    def _on_deadline(self, run: _Run) -> None:
        """The step's timeout passed: ask the child to cancel it, kill it after the grace."""
        run.deadline = None
        if run.id not in self.running or run.timed_out:
            return
        run.timed_out = True
        self._cancel(run, "timeout")

    def _abandon(self, run: _Run, reason: str) -> None:
        run.abandoned = True
        if not run.timed_out:
            self._cancel(run, reason)

    def _cancel(self, run: _Run, reason: str) -> None:
        try:
            self._send({"type": "cancel", "id": run.id, "reason": reason})
        except (ChildFailed, ProtocolError):
            pass
        loop = asyncio.get_running_loop()
        run.grace = loop.call_later(self.cancel_grace, self._on_cancel_ignored, run)

    def _timeout(self, run: _Run, killed: bool) -> Outcome:
        text = f"the step did not finish within its timeout of {run.timeout:g}s; "
        if killed:
            text += (
                f"the {self.runtime} child (pid {self.pid}) did not stop it within "
                f"{self.cancel_grace:g}s of the cancel and was killed"
            )
        else:
            text += f"it was canceled (the {self.runtime} child pid {self.pid} stays in use)"
        return Outcome(False, error=error_body("Timeout", text))

    def _on_cancel_ignored(self, run: _Run) -> None:
        """The child did not answer a cancel within the grace: kill it."""
        run.grace = None
        if run.id not in self.running:
            return
        others = len(self.running) - 1
        what = "did not stop at its timeout" if run.timed_out else "ignored a cancel"
        if self.failure is None:
            self.failure = ChildFailed(
                "ChildCrashed",
                f"the {self.runtime} child process (pid {self.pid}) was killed because another "
                f"invocation on it {what} ({others} invocation(s) in flight were lost)",
            )
        if run.timed_out:
            self._complete(run, self._timeout(run, killed=True))
        else:
            self._complete(run, ChildFailed("Canceled", "the invocation was canceled").outcome())
        self._background(self.kill())

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

    async def _on_exit(self) -> None:
        """The process ended: fail what is still running with its exit status and stderr."""
        assert self._exited is not None
        if not self.running:
            return
        code: int | None = None
        with contextlib.suppress(Exception, asyncio.CancelledError):
            code = self._exited.result()
        await self._settle_streams()
        count = len(self.running)
        if self.failure is None:
            also = f" ({count} invocations in flight)" if count > 1 else ""
            self.failure = ChildFailed(
                "ChildCrashed",
                f"the {self.runtime} child process (pid {self.pid}) {_describe_exit(code)} while "
                f"running the step{also}{self._tail()}",
            )
        self._fail_running()

    def _tail(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()][-5:]
        return "; stderr: " + " | ".join(lines) if lines else ""

    async def _settle_output(self, run: _Run) -> None:
        """Let output the child wrote before its answer reach the host first."""
        self._settling = run
        try:
            for _ in range(50):
                if not any(_pending_bytes(fd) for fd in self._out_fds):
                    return
                await asyncio.sleep(0)
        finally:
            self._settling = None

    async def _settle_streams(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._streams_closed.wait(), 1.0)

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

    def _on_output(self, stream: str, line: str) -> None:
        """A raw stdout/stderr line: it belongs to the invocation in flight if there is exactly
        one (or to the one whose answer is settling); otherwise it is logged for the child."""
        if stream == "stderr":
            self.stderr_tail.append(line)
        target = None
        if not self.running:
            target = self._settling
        elif len(self.running) == 1:
            target = next(iter(self.running.values()))
        if target is not None and not target.abandoned:
            target.host.output(stream, line)
        elif line.strip():
            logger.info("%s child %d %s: %s", self.runtime, self.pid, stream, line)

    def _on_stream_eof(self, lines: _Lines) -> None:
        lines.close()
        self._streams_open -= 1
        if self._streams_open <= 0:
            self._streams_closed.set()


def _handler_outcome(body: dict[str, Any]) -> Outcome:
    error = {
        "type": str(body.get("type") or "Error"),
        "message": str(body.get("message") or body.get("type") or "error"),
    }
    if body.get("stack"):
        error["traceback"] = str(body["stack"])
    return Outcome(False, error=error, retryable=body.get("retryable") is not False)
