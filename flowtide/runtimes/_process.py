"""The child process itself: launch and handshake, stdout/stderr, shutdown, kill and reap,
and the wording of why it ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from typing import Any

from flowtide.runtimes._channel import _Channel
from flowtide.runtimes._io import _describe_exit, _Lines, _Reader
from flowtide.runtimes._types import ChildFailed
from flowtide.runtimes.protocol import ENV_FD_IN, ENV_FD_OUT, ENV_MAX_FRAME

logger = logging.getLogger("flowtide.runtimes")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class _Process(_Channel):
    """Starts, watches, stops and reaps the child process."""

    def rss_mb(self) -> float:
        """The child's resident memory (0 if unknown); one ``pread`` of a kept-open statm."""
        try:
            if self._statm < 0:
                self._statm = os.open(f"/proc/{self.pid}/statm", os.O_RDONLY)
            pages = int(os.pread(self._statm, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * _PAGE / (1024 * 1024)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the child has used, -1 if unknown; one ``pread``."""
        try:
            if self._stat < 0:
                self._stat = os.open(f"/proc/{self.pid}/stat", os.O_RDONLY)
            fields = os.pread(self._stat, 1024, 0).rpartition(b")")[2].split()
            return (int(fields[11]) + int(fields[12])) / _TICKS
        except (OSError, ValueError, IndexError):
            return -1.0

    def cpu_delta(self) -> float:
        """CPU seconds used since the previous call (0 the first time), -1 if unknown."""
        used = self.cpu_seconds()
        if used < 0:
            return -1.0
        mark, self._cpu_mark = self._cpu_mark, used
        return used - mark if mark >= 0 else 0.0

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
        for fd in (self._statm, self._stat):
            if fd >= 0:
                os.close(fd)
        self._statm = self._stat = -1
        self._fail_running()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

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

    async def _settle_streams(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._streams_closed.wait(), 1.0)

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
