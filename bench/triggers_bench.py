"""Webhook intake: ``python -m bench.triggers_bench [--quick] [--backends sqlite,redis]``.

flowtide: a real ``flowtide serve`` process (API, webhooks, scheduler; no worker) and a separate
``flowtide worker`` process on one backend; the app's entry step declares
``triggers.webhook("bench-in")`` (no auth) and, second variant, ``triggers.webhook("bench-gh",
auth=triggers.github(...))`` (HMAC-SHA256 check plus the delivery id claimed for deduplication).
After a warm-up, 500 webhooks are sent one at a time (the unloaded latency), then 5,000 from 50
concurrent keep-alive connections, over loopback; measured: request sent -> 2xx answer
(p50/p95), request sent -> the entry step's ``step.started`` event (p50/p95; the event's
timestamp, millisecond resolution, same clock), and accepted webhooks per second with one server
process, with the worker running and, in a second server started afterwards, without it (the
server's own capacity on the shared cores).

Peers, side by side in the same run: the glue users write today, a FastAPI endpoint under
uvicorn that enqueues a task: huey ``SqliteHuey`` on SQLite, Celery ``.delay()`` on Redis (from
``.venv-bench-peers``). Their start time is ``time.time()`` at the start of the task body.
Redis: flowtide under a fresh key prefix in database 0 (deleted afterwards), Celery in
database 8 (flushed before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench._report import print_markdown
from bench.hooks import _flowtide as ft
from bench.hooks._load import Request, drive, payload, phase, phase_results
from bench.peers._common import PACKAGE_ROOT, Deadline, temp_dir

SENDERS = 50
PACE = 500.0  # webhooks/s offered by the 50 senders together in the paced phase


def paced_n(n: int) -> int:
    return max(1, n // 2)


FULL_N, QUICK_N = 5_000, 300
SEQ_N, QUICK_SEQ_N = 500, 50  # one request at a time first: the unloaded latency
WARMUP = 200
SETTLE_S = 2.0
BUDGET_S = 240.0
REDIS_URL = "redis://127.0.0.1:6379"
PEER_TIMEOUT_S = 400.0
PEERS = {"sqlite": "huey", "redis": "celery"}


def plain_request(i: int) -> Request:
    return "/hooks/bench-in", {"content-type": "application/json"}, payload(i)


def github_request(i: int) -> Request:
    body = payload(i)
    digest = hmac.new(ft.GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={digest}",
    }
    return "/hooks/bench-gh", headers, body


VARIANTS = {
    "plain": (plain_request, "receive"),
    "github": (github_request, "receive_gh"),
}


async def _flowtide_variant(
    url: str, procs: ft.Processes, variant: str, n: int, seq_n: int, deadline: Deadline
) -> dict[str, Any]:
    make, step = VARIANTS[variant]
    requests = [make(i) for i in range(WARMUP + seq_n + n + paced_n(n))].__getitem__
    await drive(procs.port, WARMUP, SENDERS, requests)  # warm-up, not counted
    await asyncio.sleep(SETTLE_S)  # let the worker drain the warm-up first
    pid = procs.server.pid
    phases = {
        "one": await phase(procs.port, pid, seq_n, 1, requests, WARMUP, BUDGET_S),
        # an offered load below capacity first, then as fast as answers come back (a backlog
        # the worker drains afterwards would otherwise slow down the next phase)
        "paced": await phase(
            procs.port, pid, paced_n(n), SENDERS, requests, WARMUP + seq_n, BUDGET_S, PACE
        ),
        "load": await phase(
            procs.port, pid, n, SENDERS, requests, WARMUP + seq_n + paced_n(n), BUDGET_S
        ),
    }
    procs.check_alive()
    run_of: dict[str, int] = {}
    for p in phases.values():
        for s in p.samples:
            if 200 <= s.status < 300:
                for run_id in json.loads(s.body)["run_ids"]:
                    run_of[run_id] = s.i
            elif s is p.samples[0] or len(run_of) == 0:
                print(f"    answer {s.status}: {s.body[:200]!r}", file=sys.stderr)
    async with ft.reader(url) as app:
        found = await ft.step_starts(app, list(run_of), step, deadline, procs)
    starts = {run_of[r]: times for r, times in found.items()}
    return {name: phase_results(p, starts) for name, p in phases.items()}


async def _alone(port: int, pid: int, n: int, first: int) -> dict[str, Any]:
    """The 50-sender phase against a server with no worker running (intake capacity)."""
    await drive(port, WARMUP, SENDERS, plain_request, first=first)
    p = await phase(port, pid, n, SENDERS, plain_request, first + WARMUP, BUDGET_S)
    return phase_results(p, {})


def run_flowtide(backend: str, n: int, seq_n: int) -> dict[str, Any]:
    prefix = ft.redis_prefix()
    try:
        with temp_dir(f"hooks-{backend}") as tmp:
            url = f"sqlite:///{tmp}/flowtide.db" if backend == "sqlite" else ""
            if backend == "redis":
                url = f"{REDIS_URL}/0?prefix={prefix}"
            deadline = Deadline(f"flowtide:{backend}", BUDGET_S * 2)
            out: dict[str, Any] = {}
            with ft.processes(tmp, url, deadline) as procs:
                for variant in VARIANTS:
                    out[variant] = asyncio.run(
                        _flowtide_variant(url, procs, variant, n, seq_n, deadline)
                    )
            # The server alone (no worker process competing for the two cores): its capacity.
            with ft.processes(tmp, url, deadline, worker=False) as procs:
                first = 10 * (WARMUP + seq_n + n)  # fresh payloads
                alone = asyncio.run(_alone(procs.port, procs.server.pid, n, first))
            out["plain"]["alone"] = alone
            return out
    finally:
        if backend == "redis":
            ft.delete_prefix(REDIS_URL, prefix)


def run_peer(backend: str, n: int, seq_n: int) -> dict[str, Any]:
    from bench.hooks import peer

    python = peer.python_for(PEERS[backend])
    if python is None:
        raise RuntimeError("no interpreter for this peer (create .venv-bench-peers)")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
    proc = subprocess.run(
        [python, "-m", "bench.hooks.peer", PEERS[backend], str(n), str(seq_n), str(SENDERS)],
        capture_output=True,
        timeout=PEER_TIMEOUT_S,
        cwd=str(PACKAGE_ROOT),
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def _get(cell: dict[str, Any] | None, phase_name: str) -> dict[str, Any] | None:
    return None if not cell else cell.get(phase_name)


def _ms(cell: dict[str, Any] | None, key: str) -> str:
    if not cell or not cell.get(key, {}).get("n"):
        return "n/a"
    return f"{cell[key]['p50']:.2f} / {cell[key]['p95']:.2f} ms"


def _rate(cell: dict[str, Any] | None) -> str:
    return "n/a" if not cell else f"{cell['per_s']:,.0f}/s"


def _cpu(cell: dict[str, Any] | None) -> str:
    return "n/a" if not cell else f"{cell['server_cpu_ms_per_request']:.2f} ms"


def _ratio(ours: Any, peer: Any) -> str:
    """``ours / peer`` as ``1.23x``; ``-`` when either is missing."""
    return "-" if not ours or not peer else f"{ours / peer:.2f}x"


ROWS: list[tuple[str, str, str, Any]] = [
    # label, phase, formatter key, ratio (ours, peer) -> (numerator, denominator) or None
    ("one sender: sent -> 2xx (p50 / p95)", "one", "intake_ms", "p50"),
    ("one sender: sent -> entry step started (p50 / p95)", "one", "start_ms", "p95"),
    (f"50 senders offering {PACE:.0f}/s: sent -> 2xx (p50 / p95)", "paced", "intake_ms", "p50"),
    (
        f"50 senders offering {PACE:.0f}/s: sent -> step started (p50 / p95)",
        "paced",
        "start_ms",
        "p95",
    ),
    ("50 senders: sent -> 2xx (p50 / p95)", "load", "intake_ms", "p50"),
    ("50 senders: sent -> entry step started (p50 / p95)", "load", "start_ms", "p95"),
    ("50 senders: accepted webhooks per second", "load", "rate", "rate"),
    ("50 senders, server alone (no worker running): per second", "alone", "rate", "rate"),
    ("server process CPU per webhook (50 senders)", "load", "cpu", "cpu"),
]


def print_table(results: dict[str, dict[str, Any]], n: int, seq_n: int) -> None:
    header = ["backend", "measure", "flowtide", "flowtide + github HMAC", "peer", "vs peer"]
    rows = []
    for backend, got in results.items():
        for label, phase_name, key, compare in ROWS:
            plain = _get(got.get("plain"), phase_name)
            gh = _get(got.get("github"), phase_name)
            peer = _get(got.get("peer"), phase_name)
            if key == "rate":
                cells = [_rate(plain), _rate(gh), _rate(peer)]
                versus = _ratio(plain and plain["per_s"], peer and peer["per_s"])
            elif key == "cpu":
                cells = [_cpu(plain), _cpu(gh), _cpu(peer)]
                ours = plain and plain["server_cpu_ms_per_request"]
                versus = _ratio(peer and peer["server_cpu_ms_per_request"], ours)
            else:
                cells = [_ms(plain, key), _ms(gh, key), _ms(peer, key)]
                ours = plain and plain[key].get(compare)
                versus = _ratio(peer and peer[key].get(compare), ours)
            cells[2] = f"{PEERS[backend]}: {cells[2]}"
            rows.append([backend, label, *cells, versus])
    print_markdown(header, rows)
    print(
        f"\none sender: {seq_n:,} webhooks one after another; 50 senders: {n:,} webhooks from 50 "
        "concurrent keep-alive connections.\nvs peer: > 1.00x means flowtide (no auth) is ahead "
        "(latency rows: peer/ours, by p50 for 2xx and p95 for the step start; rate: ours/peer; "
        "CPU: peer/ours)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.triggers_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N} webhooks per system")
    parser.add_argument("--n", type=int, help=f"webhooks per system (default {FULL_N:,})")
    parser.add_argument("--backends", default="sqlite,redis", help="sqlite and/or redis")
    parser.add_argument("--no-peers", action="store_true", help="flowtide only")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON")
    args = parser.parse_args(argv)
    n = args.n or (QUICK_N if args.quick else FULL_N)
    seq_n = QUICK_SEQ_N if args.quick else SEQ_N
    results: dict[str, dict[str, Any]] = {}
    for backend in [b for b in args.backends.split(",") if b]:
        if backend not in PEERS:
            parser.error(f"unknown backend {backend!r}")
        got: dict[str, Any] = {}
        systems: list[tuple[str, Any]] = [("flowtide", run_flowtide)]
        if not args.no_peers:
            systems.append(("peer", run_peer))
        for name, fn in systems:
            t0 = time.perf_counter()
            label = name if name == "flowtide" else PEERS[backend]
            print(f"  {backend}: {label} ...", file=sys.stderr, flush=True)
            try:
                value = fn(backend, n, seq_n)
            except Exception as exc:  # one system's failure must not lose the others
                print(f"    {label} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            if name == "flowtide":
                got.update(value)
            else:
                got["peer"] = value
            print(f"    done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        results[backend] = got
    print_table(results, n, seq_n)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
