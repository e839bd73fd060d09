"""DBOS workflows and steps used by the benchmark worker child (``_dbos_worker``).

Workflows and steps carry explicit names so the parent can enqueue them through a
``DBOSClient`` by name without running any workflow code itself.
"""

from __future__ import annotations

import time

from dbos import DBOS

APP_NAME = "flowtide-bench"
APP_VERSION = "flowtide-bench-1"
QUEUE_NAME = "flowtide_bench"

NOOP_WF = "bench_noop"
CHAIN3_WF = "bench_chain3"
LATENCY_WF = "bench_latency"


@DBOS.workflow(name=NOOP_WF)
def noop(i: int) -> int:
    return i


@DBOS.step(name="bench_step1")
def step1(run: int) -> dict[str, int]:
    return {"run": run, "seq": 1}


@DBOS.step(name="bench_step2")
def step2(data: dict[str, int]) -> dict[str, int]:
    return {"run": data["run"], "seq": data["seq"] + 1}


@DBOS.step(name="bench_step3")
def step3(data: dict[str, int]) -> dict[str, int]:
    return {"run": data["run"], "seq": data["seq"] + 1}


@DBOS.workflow(name=CHAIN3_WF)
def chain3(run: int) -> dict[str, int]:
    return step3(step2(step1(run)))


@DBOS.step(name="bench_lat1")
def lat1(run: int) -> dict[str, float]:
    return {"run": run, "t1_end": time.perf_counter()}


@DBOS.step(name="bench_lat2")
def lat2(data: dict[str, float]) -> dict[str, float]:
    t2_start = time.perf_counter()
    return {"run": data["run"], "t1_end": data["t1_end"], "t2_start": t2_start}


@DBOS.workflow(name=LATENCY_WF)
def latency(run: int) -> dict[str, float]:
    return lat2(lat1(run))
