"""Formatting shared by the benchmark runners: cells, ratios, a markdown table, and running one
system's workload so that its failure is reported without losing the other rows."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

Result = dict[str, Any] | None


def fmt(result: Result) -> str:
    if result is None:
        return "n/a"
    if result["unit"] == "ms":
        return f"{result['p50']:.3f} / {result['p95']:.3f} ms"
    return f"{result['value']:,.0f} {result['unit']}"


def ratio(ours: Result, peer: Result, higher: bool) -> str:
    if ours is None or peer is None or not peer["value"] or not ours["value"]:
        return "-"
    value = ours["value"] / peer["value"] if higher else peer["value"] / ours["value"]
    return f"{value:.2f}x"


def measure(label: str, name: str, run: Callable[..., Result], *args: Any) -> Result:
    """Run one system's workload, logging progress on stderr; a failure gives None."""
    t0 = time.perf_counter()
    print(f"  {label}: {name} ...", file=sys.stderr, flush=True)
    try:
        result = run(*args)
    except Exception as exc:  # one system's failure must not lose the other rows
        print(f"    {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        result = None
    print(f"    {fmt(result)} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return result


def print_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
