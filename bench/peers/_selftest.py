"""Run every workload of every peer and print the results.

Usage (from the repository root)::

    .venv/bin/python -m bench.peers._selftest           # small n, a quick proof it works
    .venv/bin/python -m bench.peers._selftest --full    # full-size n (DEFAULT_N)
    .venv/bin/python bench/peers/_selftest.py --peer huey --workload latency
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):
    # Run as a script: make ``bench.peers`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "bench.peers"

from bench.peers import dbos_peer, huey_peer
from bench.peers._common import DEFAULT_N, WORKLOADS, PeerResult

SMALL_N: dict[str, int] = {
    "enqueue": 500,
    "enqueue_bulk": 500,
    "drain": 500,
    "chain3": 50,
    "latency": 30,
    "state_get": 100,
    "append": 200,
}
PEERS: dict[str, ModuleType] = {huey_peer.NAME: huey_peer, dbos_peer.NAME: dbos_peer}


def _fmt(result: PeerResult | None) -> str:
    if result is None:
        return "n/a"
    if result["unit"] == "ms":
        return f"p50={result['p50']:.3f} ms  p95={result['p95']:.3f} ms"
    return f"{result['value']:,.1f} {result['unit']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the peer benchmark workloads.")
    parser.add_argument("--full", action="store_true", help="use full-size n (DEFAULT_N)")
    parser.add_argument("--peer", action="append", choices=sorted(PEERS))
    parser.add_argument("--workload", action="append", choices=WORKLOADS)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    logging.getLogger("dbos").setLevel(logging.WARNING)

    sizes = DEFAULT_N if args.full else SMALL_N
    results: list[dict[str, object]] = []
    failures = 0
    for peer_name in args.peer or list(PEERS):
        peer = PEERS[peer_name]
        for workload in args.workload or list(WORKLOADS):
            n = sizes[workload]
            t0 = time.perf_counter()
            try:
                result: PeerResult | None = peer.run(workload, n)
            except Exception as exc:
                failures += 1
                print(f"{peer_name:5} {workload:8} n={n:<6} FAILED: {exc!r}", flush=True)
                results.append(
                    {"peer": peer_name, "workload": workload, "n": n, "error": repr(exc)}
                )
                continue
            wall = time.perf_counter() - t0
            print(
                f"{peer_name:5} {workload:8} n={n:<6} {_fmt(result):40} (wall {wall:.1f} s)",
                flush=True,
            )
            if result is not None:
                print(f"      note: {result['note']}", flush=True)
            results.append(
                {"peer": peer_name, "workload": workload, "n": n, "result": result, "wall_s": wall}
            )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
