"""A small keep-alive HTTP/1.1 load generator on asyncio streams (standard library only, so
the peers' virtualenv can import it too).

``drive`` sends ``n`` requests from ``senders`` concurrent connections to 127.0.0.1 and records
for each the wall-clock time it was sent, the time its whole answer was read, the status and
the body. A hand-written client keeps the client's CPU per request small (~0.1-0.25 ms here), so
that more of the two cores are left to the server under test; every system measured is driven
by the same client.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: A request: path, extra headers, body.
Request = tuple[str, dict[str, str], bytes]

HOST = "127.0.0.1"
IO_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Sample:
    i: int
    sent: float  # time.time() just before the request was written
    latency_ms: float  # perf_counter() from before the write to the end of the answer
    status: int
    body: bytes

    @property
    def answered(self) -> float:
        return self.sent + self.latency_ms / 1000.0


class Connection:
    """One keep-alive connection; requests are sent one after another."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None and self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"content-length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        data = await self._chunked() if chunked else await self.reader.readexactly(length)
        if close:
            await self.close()
            self.reader = self.writer = None
        return status, data

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return bytes(out)
            out += chunk[:-2]


async def drive(
    port: int,
    n: int,
    senders: int,
    make: Callable[[int], Request],
    *,
    method: str = "POST",
    budget_s: float = 120.0,
    first: int = 0,
    rate: float | None = None,
) -> tuple[list[Sample], float]:
    """Send requests ``first .. first+n-1`` from ``senders`` connections; return the samples
    (in completion order) and the seconds from the first send to the last answer. With
    ``rate``, request k is not sent before ``k / rate`` seconds after the start (an offered
    load, as independent senders produce it), instead of as fast as answers come back.

    Bounded: senders stop taking requests once ``budget_s`` has passed (the caller checks
    that every request was answered); each read or write times out after 30 s."""
    samples: list[Sample] = []
    next_i = first
    begin = time.monotonic()
    stop_at = begin + budget_s

    async def sender() -> None:
        nonlocal next_i
        conn = Connection(port)
        try:
            while next_i < first + n and time.monotonic() < stop_at:
                i = next_i
                next_i += 1
                if rate is not None:
                    wait = begin + (i - first) / rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                path, headers, body = make(i)
                sent = time.time()
                t0 = time.perf_counter()
                status, data = await asyncio.wait_for(
                    conn.request(method, path, headers, body), IO_TIMEOUT_S
                )
                ms = (time.perf_counter() - t0) * 1000.0
                samples.append(Sample(i, sent, ms, status, data))
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return samples, time.perf_counter() - t0


async def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET on its own connection."""
    conn = Connection(port)
    try:
        return await asyncio.wait_for(conn.request("GET", path, headers or {}, b""), IO_TIMEOUT_S)
    finally:
        await conn.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of a list of milliseconds."""
    if not values:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "n": len(values),
    }


def payload(i: int) -> bytes:
    """The webhook body of request i (~100 bytes of JSON)."""
    import json

    body = {"id": i, "event": "order.created", "order": {"sku": "A-1", "qty": 2, "eur": 19.9}}
    return json.dumps(body, separators=(",", ":")).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``)."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def intake_results(
    samples: list[Sample],
    elapsed: float,
    starts: dict[int, tuple[float, float]],
    server_cpu_s: float,
    client_cpu_s: float,
) -> dict[str, Any]:
    """The figures of one phase: ``starts`` maps a request index to (step started, handler
    start), wall-clock seconds; CPU seconds of the server and of this client in the phase."""
    ok = [s for s in samples if 200 <= s.status < 300]
    by_i = {s.i: s for s in ok}
    step = [(starts[i][0] - by_i[i].sent) * 1000.0 for i in starts if i in by_i]
    handler = [(starts[i][1] - by_i[i].sent) * 1000.0 for i in starts if i in by_i]
    return {
        "sent": len(samples),
        "accepted": len(ok),
        "errors": len(samples) - len(ok),
        "per_s": len(ok) / elapsed if elapsed > 0 else 0.0,
        "elapsed_s": elapsed,
        "intake_ms": summary([s.latency_ms for s in ok]),
        "start_ms": summary(step),
        "handler_ms": summary(handler),
        "started": len(step),
        "server_cpu_ms_per_request": server_cpu_s * 1000.0 / max(1, len(samples)),
        "client_cpu_ms_per_request": client_cpu_s * 1000.0 / max(1, len(samples)),
    }


@dataclass(slots=True)
class Phase:
    """One measured phase of a load: its samples, duration and CPU use."""

    samples: list[Sample]
    elapsed: float
    server_cpu_s: float
    client_cpu_s: float


async def phase(
    port: int,
    server_pid: int,
    n: int,
    senders: int,
    make: Callable[[int], Request],
    first: int,
    budget_s: float = 120.0,
    rate: float | None = None,
) -> Phase:
    """``drive`` with the server's and this process's CPU time measured around it."""
    cpu0, client0 = cpu_seconds(server_pid), time.process_time()
    samples, elapsed = await drive(
        port, n, senders, make, first=first, budget_s=budget_s, rate=rate
    )
    client = time.process_time() - client0
    return Phase(samples, elapsed, cpu_seconds(server_pid) - cpu0, client)


def phase_results(p: Phase, starts: dict[int, tuple[float, float]]) -> dict[str, Any]:
    return intake_results(p.samples, p.elapsed, starts, p.server_cpu_s, p.client_cpu_s)
