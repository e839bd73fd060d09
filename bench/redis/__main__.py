"""Run the Redis benchmarks: ``python -m bench.redis [--quick] [--peers arq,rq] [--json FILE]``.

flowtide (its Redis backend) and every Redis-based peer run the same workloads one after
another in the same run, against the same Redis server (``--url``, default
redis://127.0.0.1:6379): flowtide under a fresh key prefix in database 0, each peer in its own
database number, flushed before and after. Each peer runs in a subprocess
(``python -m bench.redis_peers.<name>_peer``); arq, celery and bullmq need ``redis`` versions
that conflict with flowtide's, so they run from a second virtualenv (``.venv-bench-peers``,
see bench/README.md; ``BENCH_PEERS_PYTHON`` overrides its interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._report import fmt, measure, print_markdown, ratio
from bench.peers._common import PACKAGE_ROOT
from bench.redis import flowtide_redis

ROWS: list[tuple[str, str, int, int, bool]] = [
    # workload, label, full n, quick n, higher is better
    ("enqueue", "enqueue 10,000 jobs, one awaited call at a time", 10_000, 1_000, True),
    ("enqueue_concurrent", "enqueue 10,000 jobs, 100 concurrent callers", 10_000, 1_000, True),
    ("enqueue_bulk", "enqueue 10,000 jobs, one batch call", 10_000, 1_000, True),
    ("drain", "drain 10,000 no-op jobs", 10_000, 1_000, True),
    ("chain3", "1,000 three-step chains", 1_000, 100, True),
    ("latency", "single job enqueue -> seen done", 300, 50, False),
]
ALT = "alt"  # peers that run from the second virtualenv
PEERS: dict[str, str] = {
    "arq": ALT,
    "rq": "main",
    "dramatiq": "main",
    "celery": ALT,
    "taskiq": "main",
    "saq": "main",
    "bullmq": ALT,
}
PEER_TIMEOUT_S = 300.0


def _python(where: str) -> str | None:
    if where != ALT:
        return sys.executable
    alt = os.environ.get("BENCH_PEERS_PYTHON") or str(PACKAGE_ROOT / ".venv-bench-peers/bin/python")
    return alt if Path(alt).exists() else None


def _run_peer(name: str, workload: str, n: int, url: str) -> dict[str, Any] | None:
    python = _python(PEERS[name])
    if python is None:
        raise RuntimeError("no interpreter for this peer (create .venv-bench-peers)")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PACKAGE_ROOT)
    proc = subprocess.run(
        [python, "-m", f"bench.redis_peers.{name}_peer", workload, str(n), url],
        capture_output=True,
        timeout=PEER_TIMEOUT_S,
        cwd=str(PACKAGE_ROOT),
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    result: dict[str, Any] | None = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--only", default="", help="comma-separated workloads to run")
    parser.add_argument("--url", default="redis://127.0.0.1:6379", help="the Redis server")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            parser.error(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    only = {w for w in args.only.split(",") if w}
    url = args.url.rstrip("/")
    results: dict[str, dict[str, Any]] = {}
    for workload, label, full_n, quick_n, _ in ROWS:
        if only and workload not in only:
            continue
        n = quick_n if args.quick else full_n
        row: dict[str, Any] = {}
        for name in ["flowtide", *peers]:
            if name == "flowtide":
                row[name] = measure(label, name, flowtide_redis.run, workload, n, url + "/0")
            else:
                row[name] = measure(label, name, _run_peer, name, workload, n, url)
        results[workload] = row
    _print_table(results, peers)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _best(row: dict[str, Any], peers: list[str], higher: bool) -> str | None:
    have = [p for p in peers if row.get(p) and row[p].get("value")]
    if not have:
        return None
    key = (lambda p: row[p]["value"]) if higher else (lambda p: -row[p]["value"])
    return max(have, key=key)


def _print_table(results: dict[str, dict[str, Any]], peers: list[str]) -> None:
    header = ["workload", "flowtide", *peers, "vs best peer"]
    lines = [header]
    for workload, label, _, _, higher in ROWS:
        if workload not in results:
            continue
        row = results[workload]
        best = _best(row, peers, higher)
        versus = "-" if best is None else f"{ratio(row['flowtide'], row[best], higher)} ({best})"
        lines.append([label, fmt(row["flowtide"]), *(fmt(row.get(p)) for p in peers), versus])
    print_markdown(header, lines[1:])
    print("\nratios: flowtide vs the best peer of the row; > 1.00x means flowtide is ahead")
    print("(throughput: ours/peer; latency: peer/ours); n/a: the peer has no such API")


if __name__ == "__main__":
    sys.exit(main())
