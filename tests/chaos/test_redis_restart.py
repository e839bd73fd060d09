"""Fault tests on Redis (issue 3, 4b and 4c) against a redis-server this test starts on its own
port with ``appendonly yes``: the server is restarted in the middle of a load, and client
connections are killed. Workers and servers reconnect with backoff, log the outage once, never
crash, and every run accepted before or after completes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests._processes import Proc, flowtide_processes, write_app

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import asyncio

    from flowtide import Context, Flow

    steady = Flow("steady")


    @steady.entry(emits=["go"])
    async def first(n: int, ctx: Context) -> int:
        await asyncio.sleep(0.01)
        await ctx.emit("go", n)
        return n


    @steady.step(subscribes=["go"])
    async def second(n: int, ctx: Context) -> int:
        await asyncio.sleep(0.01)
        return n + 1
    """
)
LOST = "lost the connection to Redis"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of the test's own, in ``tmp_path``, stopped by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        """A graceful shutdown (SIGTERM): the append-only file is complete."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _base(server: Proc) -> str:
    server.wait_for_output("http://")
    match = re.search(r"http://127\.0\.0\.1:(\d+)", server.output())
    assert match, server.output()
    return f"http://127.0.0.1:{match.group(1)}"


async def _start(client: httpx.AsyncClient, inputs: range) -> list[str]:
    out = []
    for i in inputs:
        res = await client.post("/api/flows/steady/runs", json={"input": i})
        assert res.status_code == 201, res.text
        out.append(res.json()["run_id"])
    return out


async def _all_done(client: httpx.AsyncClient, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        while True:
            res = await client.get(f"/api/runs/{run_id}")
            if res.status_code == 200 and res.json()["status"] == "completed":
                break
            status = res.json().get("status") if res.status_code == 200 else res.status_code
            assert status in ("running", 503), (run_id, res.text)
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            await asyncio.sleep(0.05)


def _await_log(procs: list[Proc], text: str, timeout: float = 30) -> None:
    for proc in procs:
        proc.wait_for_output(text, timeout)


async def test_a_redis_restart_mid_load_loses_no_accepted_run(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    write_app(tmp_path, APP, redis_server.url, ["[worker]", 'lease = "2s"'])
    with flowtide_processes(tmp_path) as procs:
        server = procs.start("serve", "--port", "0", name="serve")
        workers = [procs.start("worker", name=f"worker{i}") for i in range(2)]
        base = _base(server)
        for worker in workers:
            worker.wait_for_output("worker")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            before = await _start(client, range(150))
            redis_server.stop()  # in the middle of the load
            _await_log(workers, LOST)
            await asyncio.sleep(0.5)  # down for a while: the processes retry with backoff
            redis_server.start()
            _await_log(workers, "reconnected to Redis")
            after = await _start(client, range(150, 300))
            await _all_done(client, before + after, timeout=60)
            assert (await client.get("/readyz")).status_code == 200
        for proc in [server, *workers]:
            assert proc.popen.poll() is None, proc.output()
            assert proc.output().count(LOST) <= 1, proc.output()
            assert "Traceback" not in proc.output(), proc.output()
        for proc in [server, *workers]:
            assert proc.stop() == 0, proc.output()


async def test_killed_connections_never_crash_a_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    write_app(tmp_path, APP, redis_server.url, ["[worker]", 'lease = "2s"'])
    admin = redis.Redis(port=redis_server.port)
    with flowtide_processes(tmp_path) as procs:
        server = procs.start("serve", "--port", "0", name="serve")
        worker = procs.start("worker", name="worker")
        base = _base(server)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            run_ids = await _start(client, range(20))
            for _ in range(5):  # drop every client connection, pub/sub ones included
                admin.client_kill_filter(_type="normal", skipme=True)
                admin.client_kill_filter(_type="pubsub", skipme=True)
                run_ids += await _start(client, range(5))
            await _all_done(client, run_ids, timeout=60)
            # a listener that lost its subscription resubscribed: an idle worker still wakes
            await asyncio.sleep(0.3)
            started = time.monotonic()
            (late,) = await _start(client, range(1))
            await _all_done(client, [late], timeout=10)
            assert time.monotonic() - started < 5
        for proc in (server, worker):
            assert proc.popen.poll() is None, proc.output()
            assert "Traceback" not in proc.output(), proc.output()
            assert proc.stop() == 0, proc.output()
    with contextlib.suppress(redis.RedisError):
        admin.close()
