"""Child-process runtimes: ``python -m bench.runtimes_bench [--quick] [--json FILE]``.

1. Invocation overhead of a warm pool (python-process and node) over an in-process call of the
   same no-op handler through the executor: p50 and p95 of (pool call) - (in-process p50).
2. A context round trip from the child: ``ctx.state.get`` timed inside the child.
3. Throughput of no-op jobs through a real worker (memory backend; worker concurrency 10 and
   64, or ``--concurrency N``): Node functions vs in-process Python functions, measured
   alternately ``--rounds`` times (default 3); the medians are reported, with the CPU time per
   job of this process (enqueue and worker) and of the Node children, which a busy machine
   disturbs less than the throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flowtide import App, Config, Context, function
from flowtide.engine.context import Context as EngineContext
from flowtide.engine.executor import run_handler, run_in_child
from flowtide.engine.worker import Worker
from flowtide.registry import InputModel, Registry
from flowtide.runtimes import PoolOptions, RuntimePools

NODE_NOOP = "export default async (input) => input;\n"
NODE_GETS = """
export default async (n, ctx) => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ctx.state.get('k');
    out.push(performance.now() - t);
  }
  return out;
};
"""


async def py_noop(x: Any, ctx: Context) -> Any:
    return x


async def py_gets(n: int, ctx: Context) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await ctx.state.get("k")
        out.append((time.perf_counter() - t) * 1000)
    return out


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children(worker: Worker) -> float:
    return sum(max(0.0, c.cpu_seconds()) for p in worker.runtimes.pools for c in p.children)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": _pct(values, 0.95), "n": len(values)}


async def _latencies(app: App, n: int, tmp: Path) -> dict[str, Any]:
    ctx = EngineContext(
        backend=app.backend,
        control=app.service,
        job_id="j",
        run_id=None,
        flow=None,
        step="bench",
        attempt=1,
    )
    model = InputModel(None, 2)
    inproc = []
    for _ in range(n):
        t = time.perf_counter()
        await run_handler(py_noop, True, model, 1, ctx, 30.0, None)
        inproc.append((time.perf_counter() - t) * 1000)
    base = statistics.median(inproc)
    out: dict[str, Any] = {"in_process_call_ms": _summary(inproc)}
    (tmp / "noop.mjs").write_text(NODE_NOOP)
    (tmp / "gets.mjs").write_text(NODE_GETS)
    pools = RuntimePools({"python-process": PoolOptions(size=1), "node": PoolOptions(size=1)})
    refs = {
        "python-process": ("bench.runtimes_bench:py_noop", "bench.runtimes_bench:py_gets"),
        "node": (str(tmp / "noop.mjs"), str(tmp / "gets.mjs")),
    }
    try:
        for runtime, (noop, gets) in refs.items():
            for _ in range(20):  # warm up: start the child, import the handler
                await run_in_child(pools, runtime, noop, model, 1, ctx, 30.0)
            calls = []
            for _ in range(n):
                t = time.perf_counter()
                attempt = await run_in_child(pools, runtime, noop, model, 1, ctx, 30.0)
                calls.append((time.perf_counter() - t) * 1000)
                assert attempt.ok, attempt.error
            overhead = [c - base for c in calls]
            got = await run_in_child(pools, runtime, gets, model, n, ctx, 60.0)
            assert got.ok, got.error
            out[runtime] = {
                "invocation_overhead_ms": _summary(overhead),
                "state_get_round_trip_ms": _summary([float(v) for v in got.result]),
            }
    finally:
        await pools.stop()
    return out


async def _throughput(n: int, tmp: Path, concurrency: int) -> dict[str, float]:
    (tmp / "tp.mjs").write_text(NODE_NOOP)
    node_fn = function("node_noop", runtime="node", handler=str(tmp / "tp.mjs"), queue="tp")

    @function(queue="tp")
    async def python_noop(x: Any, ctx: Context) -> Any:
        return x

    out = {}
    for name, fn in (("python_in_process", python_noop), ("node", node_fn)):
        registry = Registry()
        registry.add(fn)
        config = Config(backend="memory://")
        config.worker.poll_interval = 0.005
        async with App(config, registry=registry) as app:
            worker = Worker(app.service, concurrency=concurrency)
            task = asyncio.create_task(worker.run())
            await app.enqueue_many(fn.name, list(range(20)))  # warm up
            while worker.processed < 20:
                await asyncio.sleep(0.005)
            cpu, children = _cpu_self(), _cpu_children(worker)
            t = time.perf_counter()
            await app.enqueue_many(fn.name, list(range(n)))
            while worker.processed < 20 + n:
                await asyncio.sleep(0.002)
            out[name] = n / (time.perf_counter() - t)
            out[f"{name}_cpu_us_per_job"] = (_cpu_self() - cpu) / n * 1e6
            if name == "node":
                out["node_children_cpu_us_per_job"] = (_cpu_children(worker) - children) / n * 1e6
            worker.stop()
            await task
    out["node_vs_python_ratio"] = out["node"] / out["python_in_process"]
    return out


async def _throughputs(n: int, tmp: Path, concurrency: int, rounds: int) -> dict[str, Any]:
    runs = [await _throughput(n, tmp, concurrency) for _ in range(rounds)]
    keys = ["python_in_process", "node", *(k for k in runs[0] if k.endswith("per_job"))]
    out: dict[str, Any] = {key: statistics.median(r[key] for r in runs) for key in keys}
    out["node_vs_python_ratio"] = statistics.median(r["node_vs_python_ratio"] for r in runs)
    out["rounds"] = runs
    return out


async def run(quick: bool, concurrency: list[int], rounds: int) -> dict[str, Any]:
    n, jobs = (200, 500) if quick else (2000, 5000)
    with tempfile.TemporaryDirectory() as tmp:
        async with App(Config(backend="memory://"), registry=Registry()) as app:
            latencies = await _latencies(app, n, Path(tmp))
        throughput = {c: await _throughputs(jobs, Path(tmp), c, rounds) for c in concurrency}
    return {"latency": latencies, "throughput_jobs_per_s": throughput}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtimes_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--concurrency", type=int, action="append", help="worker slots (10, 64)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.quick, args.concurrency or [10, 64], max(1, args.rounds)))
    lat = result["latency"]
    print(f"in-process no-op call: p50 {lat['in_process_call_ms']['p50']:.3f} ms")
    for runtime in ("python-process", "node"):
        o, g = lat[runtime]["invocation_overhead_ms"], lat[runtime]["state_get_round_trip_ms"]
        print(
            f"{runtime:15} invocation overhead p50 {o['p50']:.3f} ms  p95 {o['p95']:.3f} ms | "
            f"ctx.state.get round trip p50 {g['p50']:.3f} ms  p95 {g['p95']:.3f} ms"
        )
    for concurrency, tp in result["throughput_jobs_per_s"].items():
        print(
            f"no-op jobs/s, worker concurrency {concurrency}: in-process python "
            f"{tp['python_in_process']:,.0f}, node {tp['node']:,.0f} "
            f"(ratio {tp['node_vs_python_ratio']:.2f}; median of {len(tp['rounds'])})"
        )
        print(
            f"  CPU per job: in-process python {tp['python_in_process_cpu_us_per_job']:.0f} us; "
            f"node {tp['node_cpu_us_per_job']:.0f} us here + "
            f"{tp['node_children_cpu_us_per_job']:.0f} us in the children (medians)"
        )
        rounds = (
            f"{r['python_in_process']:,.0f} / {r['node']:,.0f} = {r['node_vs_python_ratio']:.2f}"
            for r in tp["rounds"]
        )
        print("  rounds (in-process / node = ratio): " + "  ".join(rounds))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
