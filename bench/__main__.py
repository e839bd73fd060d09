"""Run the benchmarks: ``python -m bench [--quick] [--peers huey,dbos] [--json FILE]``.

Every workload runs for flowtide and each peer side by side on the same machine in the same
run, each against its own fresh SQLite file, and the table reports ratios rather than trusting
absolute numbers on a shared machine.

The other benchmarks are separate commands (bench/README.md): ``bench.redis``,
``bench.postgres.*``, ``bench.runtimes_bench``, ``bench.triggers_bench`` (webhook intake) and
``bench.awaits_bench`` (10,000 runs awaiting a webhook).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench import flowtide_side
from bench._report import fmt, measure, print_markdown, ratio
from bench.peers import dbos_peer, huey_peer

ROWS: list[tuple[str, str, int, int, bool]] = [
    # workload, label, full n, quick n, higher is better
    ("enqueue", "enqueue 10,000 no-op jobs, one call each", 10_000, 1_000, True),
    ("enqueue_bulk", "enqueue 10,000 no-op jobs, one batch", 10_000, 1_000, True),
    ("drain", "drain 10,000 no-op jobs", 10_000, 1_000, True),
    ("chain3", "1,000 three-step runs", 1_000, 100, True),
    ("latency", "step -> next step latency", 200, 30, False),
    ("state_get", "ctx.state.get latency", 1_000, 100, False),
    ("append", "event append latency", 2_000, 200, False),
]
PEERS = {"huey": huey_peer, "dbos": dbos_peer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--only", default="", help="comma-separated workloads to run")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    only = {w for w in args.only.split(",") if w}
    results: dict[str, dict[str, Any]] = {}
    for workload, label, full, quick, _ in ROWS:
        if only and workload not in only:
            continue
        n = quick if args.quick else full
        row: dict[str, Any] = {"n": n}
        for name, module in [("flowtide", flowtide_side), *((p, PEERS[p]) for p in peers)]:
            row[name] = measure(label, name, module.run, workload, n)
        results[workload] = row
    _print_table(results, peers)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _print_table(results: dict[str, dict[str, Any]], peers: list[str]) -> None:
    header = ["workload", "flowtide", *peers, *(f"vs {p}" for p in peers)]
    lines = [header]
    for workload, label, _, _, higher in ROWS:
        if workload not in results:
            continue
        row = results[workload]
        cells = [label, fmt(row["flowtide"]), *(fmt(row.get(p)) for p in peers)]
        cells += [ratio(row["flowtide"], row.get(p), higher) for p in peers]
        lines.append(cells)
    print_markdown(header, lines[1:])
    print("\nratios: > 1.00x means flowtide is ahead (throughput: ours/peer; latency: peer/ours)")


if __name__ == "__main__":
    sys.exit(main())
