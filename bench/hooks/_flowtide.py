"""The flowtide processes of the webhook benchmarks and reading the measured runs back.

``flowtide serve`` (API, webhooks, scheduler; no worker) and ``flowtide worker`` run as two
real child processes (``python -m flowtide.cli ...``) on one backend, started and stopped by
pid. The parent reads the runs' histories straight from the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.hooks._app import GITHUB_SECRET_ENV
from bench.hooks._load import free_port
from bench.peers._common import Child, Deadline, child_process, wait_for
from flowtide import App, Config
from flowtide.registry import Registry

APP = "bench.hooks._app"
GITHUB_SECRET = "bench-secret-" + "x" * 20
WORKER_CONCURRENCY = 50
PROFILE_ENV = "BENCH_PROFILE_SERVER"  # a file name: run `flowtide serve` under cProfile


@dataclass(slots=True)
class Processes:
    server: Child
    port: int
    worker: Child | None

    def check_alive(self) -> None:
        self.server.check_alive()
        if self.worker is not None:
            self.worker.check_alive()


def _logged(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def processes(
    tmp: Path, url: str, deadline: Deadline, *, worker: bool = True
) -> Iterator[Processes]:
    """``flowtide serve`` and (with ``worker``) ``flowtide worker`` on ``url``, both ready."""
    port = free_port()
    env = {
        "FLOWTIDE_BACKEND": url,
        "FLOWTIDE_SERVER_PORT": str(port),
        "FLOWTIDE_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        GITHUB_SECRET_ENV: GITHUB_SECRET,
    }
    common = ["--app", APP, "--log-level", "warning"]
    with contextlib.ExitStack() as stack:
        server_log = tmp / "serve.log"
        module, args = "flowtide.cli", ["serve", *common]
        profile = os.environ.get(PROFILE_ENV)
        if profile:  # cProfile the server process; the profile is written when it stops
            module, args = "cProfile", ["-o", profile, "-m", module, *args]
        server = stack.enter_context(child_process(module, args, env, server_log))
        wait_for(lambda: _logged(server_log, "flowtide serve: http"), deadline, "serve", server)
        child = None
        if worker:
            worker_log = tmp / "worker.log"
            child = stack.enter_context(
                child_process("flowtide.cli", ["worker", *common], env, worker_log)
            )
            wait_for(lambda: _logged(worker_log, "ready (queues"), deadline, "worker", child)
        yield Processes(server, port, child)


def reader(url: str) -> App:
    """An App on ``url`` that loads no definitions (it only reads runs)."""
    return App(Config(backend=url), registry=Registry())


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def step_starts(
    app: App, run_ids: list[str], step: str, deadline: Deadline, child: Processes
) -> dict[str, tuple[float, float]]:
    """For each run id: the wall-clock times of ``step``'s ``step.started`` event (ms
    resolution, as stored) and of its handler's own start (its result's ``t``), once the step
    completed. Waits (bounded) until every run has them."""
    out: dict[str, tuple[float, float]] = {}
    missing = list(run_ids)
    while missing:
        child.check_alive()
        deadline.check(f"waiting for {len(missing)} runs to reach step {step}")
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            histories = await asyncio.gather(*(app.backend.read_events(r) for r in chunk))
            for run_id, events in zip(chunk, histories, strict=True):
                started = completed = None
                for ev in events:
                    if ev.get("step") != step:
                        continue
                    if ev["type"] == "step.started":
                        started = epoch(ev["ts"])
                    elif ev["type"] == "step.completed":
                        completed = ev["data"].get("result", {}).get("t")
                if started is not None and completed is not None:
                    out[run_id] = (started, float(completed))
        missing = [r for r in missing if r not in out]
        if missing:
            await asyncio.sleep(0.2)
    return out


def redis_prefix() -> str:
    return f"bench-hooks-{uuid.uuid4().hex[:8]}:"


def delete_prefix(base: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(base)
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            r.unlink(*keys[i : i + 1000])
    finally:
        r.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")
