"""Many runs awaiting at once: ``python -m bench.awaits_bench [--quick] [--backends sqlite,redis]``.

flowtide: ``flowtide serve`` and ``flowtide worker`` as two child processes on one backend,
app ``bench.hooks._app``, flow ``approval``: ``prepare`` -> ``approve`` with
``await_before=awaits.webhook(timeout="1h")``. The parent starts N runs (``app.start`` from
200 concurrent tasks), waits until all N webhook awaits are pending, reads their URLs from
``GET /api/awaits`` (pages of 500, from the server), measures the server's resident memory
(``VmRSS``), then resolves every await by POSTing to its URL from 50 concurrent keep-alive
connections. Measured: time to resolve all N, that every run completed, and request sent ->
``step.started`` of the resumed ``approve`` step (p50/p95; event timestamps, ms resolution).

Peer on SQLite: DBOS (its SQLite system database): N async workflows blocked in
``DBOS.recv_async`` in one DBOS process, resolved by ``DBOSClient.send`` from 50 concurrent
threads; the resumed time is ``time.time()`` right after ``recv`` returns. DBOS has no Redis
system database, so the Redis row has no peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._report import print_markdown
from bench.hooks import _flowtide as ft
from bench.hooks._load import Request, get, phase, phase_results
from bench.peers._common import PACKAGE_ROOT, Deadline, temp_dir
from flowtide import App, Config
from flowtide.engine import await_plan
from flowtide.registry import discover

FULL_N, QUICK_N = 10_000, 300
SEQ_N, QUICK_SEQ_N = 500, 50  # resolved one at a time first: the unloaded latency
SENDERS = 50
PACE = 500.0  # resolutions/s offered by the 50 callers together in the paced phase
STARTERS = 200
BUDGET_S = 400.0
REDIS_URL = "redis://127.0.0.1:6379"
PEER_TIMEOUT_S = 900.0
DBOS_N = 2_000
RSS_TARGET_MIB = 300.0


async def _count_pending(app: App) -> int:
    count, after = 0, None
    while True:
        page = await app.backend.list_records(await_plan.AWAITS, 1000, after)
        count += len(page)
        if len(page) < 1000:
            return count
        after = page[-1][0]


async def _pending_from_api(port: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        path = "/api/awaits?status=pending&limit=500" + (f"&cursor={cursor}" if cursor else "")
        status, body = await get(port, path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        page = json.loads(body)
        items += page["items"]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return items


async def _flowtide(
    url: str, procs: ft.Processes, n: int, seq_n: int, deadline: Deadline
) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_idle_mib": ft.rss_mib(procs.server.pid)}
    registry = discover([ft.APP])
    async with App(Config(backend=url), registry=registry) as app:
        t0 = time.perf_counter()
        run_ids: list[str] = []
        for lo in range(0, n, STARTERS * 5):
            batch = range(lo, min(n, lo + STARTERS * 5))
            run_ids += await asyncio.gather(*(app.start("approval", i) for i in batch))
            deadline.check("starting runs")
        out["start_s"] = time.perf_counter() - t0
        while (pending := await _count_pending(app)) < n:
            procs.check_alive()
            deadline.check(f"waiting for awaits ({pending}/{n} pending)")
            await asyncio.sleep(0.25)
        out["all_awaiting_s"] = time.perf_counter() - t0
        awaiting = await _pending_from_api(procs.port)
        mine = {r for r in run_ids}
        items = [a for a in awaiting if a["run_id"] in mine and a["step"] == "approve"]
        if len(items) != n:
            raise RuntimeError(f"{len(items)} pending awaits listed, expected {n}")
        out["rss_awaiting_mib"] = ft.rss_mib(procs.server.pid)
        assert procs.worker is not None
        out["worker_rss_awaiting_mib"] = ft.rss_mib(procs.worker.pid)
        paths = ["/hooks/await/" + a["url"].rsplit("/", 1)[1] for a in items]
        headers = {"content-type": "application/json"}
        body = b'{"approved":true,"by":"bench"}'

        def make(i: int) -> Request:
            return paths[i], headers, body

        pid = procs.server.pid
        paced = max(1, (n - seq_n) // 4)
        phases = {
            "one": await phase(procs.port, pid, seq_n, 1, make, 0, BUDGET_S),
            # an offered load below capacity (independent approvers), then as fast as it goes
            "paced": await phase(procs.port, pid, paced, SENDERS, make, seq_n, BUDGET_S, PACE),
            "load": await phase(
                procs.port, pid, n - seq_n - paced, SENDERS, make, seq_n + paced, BUDGET_S
            ),
        }
        out["rss_after_mib"] = ft.rss_mib(procs.server.pid)
        sent: dict[str, float] = {}
        for p in phases.values():
            for s in p.samples:
                if s.status == 200:
                    sent[items[s.i]["run_id"]] = s.sent
                else:
                    print(f"    answer {s.status}: {s.body[:200]!r}", file=sys.stderr)
        found = await ft.step_starts(app, list(sent), "approve", deadline, procs)
        by_i = {i: items[i]["run_id"] for i in range(n)}
        starts = {i: found[r] for i, r in by_i.items() if r in found}
        for name, p in phases.items():
            out[name] = phase_results(p, starts)
        load = phases["load"]
        first = min(s.sent for s in load.samples)
        out["load"]["all_resumed_s"] = max(starts[s.i][0] for s in load.samples) - first
        completed = 0
        for lo in range(0, n, 500):
            chunk = run_ids[lo : lo + 500]
            records = await asyncio.gather(*(app.backend.get_run(r) for r in chunk))
            completed += sum(1 for rec in records if rec is not None and rec.status == "completed")
        out["completed"] = completed
        out["n"] = n
    return out


def run_flowtide(backend: str, n: int, seq_n: int) -> dict[str, Any]:
    prefix = ft.redis_prefix()
    try:
        with temp_dir(f"awaits-{backend}") as tmp:
            url = f"sqlite:///{tmp}/flowtide.db"
            if backend == "redis":
                url = f"{REDIS_URL}/0?prefix={prefix}"
            deadline = Deadline(f"flowtide:{backend}", BUDGET_S)
            with ft.processes(tmp, url, deadline) as procs:
                return asyncio.run(_flowtide(url, procs, n, seq_n, deadline))
    finally:
        if backend == "redis":
            ft.delete_prefix(REDIS_URL, prefix)


def run_dbos(n: int, seq_n: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.hooks.dbos_awaits", str(n), str(seq_n), str(SENDERS)],
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


def _ms(cell: dict[str, Any] | None, key: str) -> str:
    if not cell or not cell.get(key, {}).get("n"):
        return "n/a"
    return f"{cell[key]['p50']:.1f} / {cell[key]['p95']:.1f} ms"


def print_table(results: dict[str, dict[str, Any]], n: int, seq_n: int) -> None:
    header = ["backend", "system", f"RSS, {n:,} awaiting", "completed"]
    header += ["one caller: call (p50 / p95)", "one caller: call -> step started (p50 / p95)"]
    header += [f"50 callers offering {PACE:.0f}/s: call -> step started (p50 / p95)"]
    header += ["50 callers: resolve the rest", "50 callers: call -> step started"]
    header += ["server CPU per resolution"]
    rows = []
    for backend, systems in results.items():
        for name, cell in systems.items():
            if cell is None:
                rows.append([backend, name, *["n/a"] * (len(header) - 2)])
                continue
            one, load = cell["one"], cell["load"]
            rate = load["accepted"] / load["all_resumed_s"] if load["all_resumed_s"] else 0.0
            rows.append(
                [
                    backend,
                    name,
                    f"{cell['rss_awaiting_mib']:.0f} MiB (idle {cell['rss_idle_mib']:.0f})",
                    f"{cell['completed']:,} / {cell['n']:,}",
                    _ms(one, "intake_ms"),
                    _ms(one, "start_ms"),
                    _ms(cell.get("paced"), "start_ms"),
                    f"{load['all_resumed_s']:.1f} s ({rate:,.0f}/s)",
                    _ms(load, "start_ms"),
                    f"{load['server_cpu_ms_per_request']:.2f} ms",
                ]
            )
    print_markdown(header, rows)
    print(
        f"\nRSS: VmRSS of flowtide serve (target < {RSS_TARGET_MIB:.0f} MiB) / of the DBOS "
        f"process. One caller: the first {seq_n:,} awaits resolved one call at a time; "
        f"then a quarter of the rest from 50 callers offering {PACE:.0f}/s together; "
        f"50 callers: the others from 50 concurrent connections (DBOS: threads), "
        "from the first call to the last resumed step's start."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.awaits_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N} runs per system")
    parser.add_argument("--n", type=int, help=f"awaiting runs per system (default {FULL_N:,})")
    parser.add_argument("--backends", default="sqlite,redis", help="sqlite and/or redis")
    parser.add_argument("--no-peers", action="store_true", help="flowtide only")
    parser.add_argument(
        "--dbos-n",
        type=int,
        help=f"DBOS workflows (default {DBOS_N:,}: at 10,000 DBOS had 5,566 in recv after 4 min)",
    )
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON")
    args = parser.parse_args(argv)
    n = args.n or (QUICK_N if args.quick else FULL_N)
    seq_n = QUICK_SEQ_N if args.quick else SEQ_N
    dbos_n = args.dbos_n or min(n, DBOS_N)
    results: dict[str, dict[str, Any]] = {}
    for backend in [b for b in args.backends.split(",") if b]:
        if backend not in ("sqlite", "redis"):
            parser.error(f"unknown backend {backend!r}")
        systems: list[tuple[str, Any, tuple[Any, ...]]] = [
            ("flowtide", run_flowtide, (backend, n, seq_n))
        ]
        if backend == "sqlite" and not args.no_peers:
            systems.append(("dbos", run_dbos, (dbos_n, min(seq_n, dbos_n // 4))))
        got: dict[str, Any] = {}
        for name, fn, fn_args in systems:
            t0 = time.perf_counter()
            print(f"  {backend}: {name} ...", file=sys.stderr, flush=True)
            try:
                got[name] = fn(*fn_args)
            except Exception as exc:  # one system's failure must not lose the others
                print(f"    {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                got[name] = None
            print(f"    done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        results[backend] = got
    print_table(results, n, seq_n)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
