"""The peers of the webhook benchmarks, run in their own interpreter (huey: flowtide's
``.venv``; celery: ``.venv-bench-peers``):
``python -m bench.hooks.peer huey|celery N SEQ_N SENDERS`` prints one JSON result: SEQ_N
webhooks sent one at a time, then N from SENDERS concurrent connections.

A uvicorn process serving ``bench.hooks._peer_web`` (FastAPI, uvicorn's defaults: uvloop,
httptools, access log off) and one worker process: ``huey_consumer -w 4 -k thread`` polling
every 10 ms (flowtide's SQLite wake-up polls every 10 ms too; huey's default back-off would
add up to 10 s), or ``celery worker -P threads -c 8`` without gossip, mingle and heartbeat.
Both started and stopped by pid; every wait is bounded. Then a second uvicorn alone (no
worker) takes N more webhooks from SENDERS connections: the endpoint's own capacity.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from bench.hooks._load import HOST, drive, free_port, payload, phase, phase_results
from bench.peers._common import PACKAGE_ROOT, Child, Deadline, child_process, temp_dir, wait_for

REDIS_URL = "redis://127.0.0.1:6379/8"  # the celery peer's own database, flushed
WARMUP = 200
SETTLE_S = 2.0
BUDGET_S = 240.0
WORKERS: dict[str, tuple[str, list[str]]] = {
    "huey": (
        "huey.bin.huey_consumer",
        ["bench.hooks._peer_tasks.huey", "-w", "4", "-k", "thread", "-d", "0.01", "-m", "0.01"],
    ),
    "celery": (
        "celery",
        [
            "-A",
            "bench.hooks._peer_tasks",
            "worker",
            "-P",
            "threads",
            "-c",
            "8",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
    ),
}


def python_for(kind: str) -> str | None:
    """The interpreter a peer runs in (None: its virtualenv is missing)."""
    if kind != "celery":
        return sys.executable
    alt = os.environ.get("BENCH_PEERS_PYTHON") or str(PACKAGE_ROOT / ".venv-bench-peers/bin/python")
    return alt if Path(alt).exists() else None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def _flush(url: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    try:
        r.flushdb()
    finally:
        r.close()


def intake(kind: str, n: int, seq_n: int, senders: int) -> dict[str, Any]:
    with temp_dir(f"hooks-{kind}") as tmp:
        db = str(tmp / "huey.db") if kind == "huey" else REDIS_URL
        if kind == "celery":
            _flush(db)
        env = {"BENCH_HOOK_PEER": kind, "BENCH_HOOK_DB": db, "BENCH_HOOK_READY": str(tmp / "r")}
        os.environ.update(env)
        from bench.hooks import _peer_tasks

        deadline = Deadline(f"{kind}:intake", BUDGET_S * 2)
        port = free_port()
        web_args = ["bench.hooks._peer_web:app", "--host", HOST, "--port", str(port)]
        web_args += ["--log-level", "warning", "--no-access-log"]
        module, args = WORKERS[kind]
        try:
            with (
                child_process(module, args, env, tmp / "worker.log") as worker,
                child_process("uvicorn", web_args, env, tmp / "web.log") as web,
            ):
                wait_for((tmp / "r").exists, deadline, "the worker to start", worker)
                wait_for(lambda: _listening(port), deadline, "uvicorn to listen", web)
                result = asyncio.run(
                    _measure(port, n, seq_n, senders, web, worker, deadline, _peer_tasks)
                )
            # uvicorn alone (no worker process competing for the two cores): its capacity.
            port = free_port()
            web_args[web_args.index("--port") + 1] = str(port)
            with child_process("uvicorn", web_args, env, tmp / "web2.log") as web:
                wait_for(lambda: _listening(port), deadline, "uvicorn to listen", web)
                result["alone"] = asyncio.run(_alone(port, n, senders, web))
            return result
        finally:
            if kind == "celery":
                _flush(db)


async def _measure(
    port: int,
    n: int,
    seq_n: int,
    senders: int,
    web: Child,
    worker: Child,
    deadline: Deadline,
    tasks: Any,
) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    bodies = [payload(i) for i in range(WARMUP + seq_n + n + max(1, n // 2))]

    def make(i: int) -> tuple[str, dict[str, str], bytes]:
        return "/hooks/bench-in", headers, bodies[i]

    await drive(port, WARMUP, senders, make)
    await asyncio.sleep(SETTLE_S)  # let the worker drain the warm-up first
    phases = {
        "one": await phase(port, web.pid, seq_n, 1, make, WARMUP, BUDGET_S),
        "paced": await phase(
            port, web.pid, max(1, n // 2), senders, make, WARMUP + seq_n, BUDGET_S, 500.0
        ),
        "load": await phase(
            port, web.pid, n, senders, make, WARMUP + seq_n + max(1, n // 2), BUDGET_S
        ),
    }
    ids = {
        json.loads(s.body)["task_id"]: s.i
        for p in phases.values()
        for s in p.samples
        if 200 <= s.status < 300
    }
    starts: dict[int, tuple[float, float]] = {}
    missing = list(ids)
    while missing:
        web.check_alive()
        worker.check_alive()
        deadline.check(f"waiting for {len(missing)} tasks to start")
        for task_id in missing:
            t = tasks.started_at(task_id)
            if t is not None:
                starts[ids[task_id]] = (t, t)
        missing = [t for t in missing if ids[t] not in starts]
        if missing:
            await asyncio.sleep(0.2)
    result: dict[str, Any] = {name: phase_results(p, starts) for name, p in phases.items()}
    result["note"] = f"{tasks.KIND} via FastAPI ({os.environ.get('BENCH_HOOK_ENDPOINT', 'async')})"
    return result


async def _alone(port: int, n: int, senders: int, web: Child) -> dict[str, Any]:
    headers = {"content-type": "application/json"}

    def make(i: int) -> tuple[str, dict[str, str], bytes]:
        return "/hooks/bench-in", headers, payload(i)

    first = 10 * (WARMUP + n)
    await drive(port, WARMUP, senders, make, first=first)
    p = await phase(port, web.pid, n, senders, make, first + WARMUP, BUDGET_S)
    return phase_results(p, {})


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] not in WORKERS:
        raise SystemExit("usage: python -m bench.hooks.peer huey|celery N SEQ_N SENDERS")
    kind, n, seq_n, senders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t0 = time.perf_counter()
    result = intake(kind, n, seq_n, senders)
    result["wall_s"] = time.perf_counter() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
