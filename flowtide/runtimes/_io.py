"""Small I/O helpers of :mod:`flowtide.runtimes.child`: pipe readers, line splitting."""

from __future__ import annotations

import asyncio
import fcntl
import signal
import struct
import termios
from collections.abc import Callable

MAX_OUTPUT_LINE = 16 * 1024


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is gone"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by signal {name}"
    return f"exited with code {code}"


def _pending_bytes(fd: int) -> int:
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


class _Reader(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        self._on_data, self._on_eof = on_data, on_eof

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_eof()


class _Lines:
    """Splits a byte stream into lines (long lines are cut at MAX_OUTPUT_LINE)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit, self._buf = emit, bytearray()

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                line = bytes(buf[:end])
                del buf[: end + 1]
            elif len(buf) >= MAX_OUTPUT_LINE:
                line = bytes(buf[:MAX_OUTPUT_LINE])
                del buf[:MAX_OUTPUT_LINE]
            else:
                return
            self._emit(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self._buf:
            self._emit(self._buf.decode("utf-8", "replace"))
            self._buf.clear()
