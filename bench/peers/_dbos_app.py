"""DBOS workflows and steps used by the benchmark worker child (``_dbos_worker``).

Workflows and steps carry explicit names so the parent can enqueue them through a
``DBOSClient`` by name without running any workflow code itself.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dbos import DBOS

from ._common import STATE_KEY, STATE_VALUE, append_record

APP_NAME = "flowtide-bench"
APP_VERSION = "flowtide-bench-1"
QUEUE_NAME = "flowtide_bench"

NOOP_WF = "bench_noop"
CHAIN3_WF = "bench_chain3"
LATENCY_WF = "bench_latency"
STATE_WF = "bench_state_probe"
APPEND_WF = "bench_append_probe"
STREAM_KEY = "log"

#: Set by the worker child on SIGTERM/SIGINT; the probe loops stop early when it is set.
STOP = threading.Event()


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


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@DBOS.step(name="bench_get_many")
def get_many(workflow_id: str, n: int) -> list[float]:
    """Time n ``DBOS.get_event`` reads of an already-set event from inside a step.

    Inside a step (not directly in the workflow body) ``get_event`` is a plain read: it is
    not checkpointed and records no durable timeout, like flowtide's ``ctx.state.get``.
    """
    timings: list[float] = []
    for _ in range(n):
        if STOP.is_set():
            break
        t0 = time.perf_counter()
        value: Any = DBOS.get_event(workflow_id, STATE_KEY, timeout_seconds=5)
        timings.append(_ms_since(t0))
        if value != STATE_VALUE:
            raise RuntimeError(f"get_event returned {value!r} for {STATE_KEY!r}")
    return timings


@DBOS.workflow(name=STATE_WF)
def state_probe(n: int) -> list[float]:
    DBOS.set_event(STATE_KEY, STATE_VALUE)  # committed before the step below starts
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    return get_many(workflow_id, n)


@DBOS.workflow(name=APPEND_WF)
def append_probe(n: int) -> dict[str, list[float]]:
    """Time n ``DBOS.write_stream`` calls, then n ``DBOS.set_event`` calls (distinct keys).

    Called from the workflow body, each is its own checkpointed operation: one SQLite
    transaction that inserts the stream row (resp. upserts the event and its history row)
    and records the operation output.
    """
    stream: list[float] = []
    events: list[float] = []
    for i in range(n):
        if STOP.is_set():
            break
        record = append_record(i)
        t0 = time.perf_counter()
        DBOS.write_stream(STREAM_KEY, record)
        stream.append(_ms_since(t0))
    for i in range(n):
        if STOP.is_set():
            break
        record = append_record(i)
        t0 = time.perf_counter()
        DBOS.set_event(f"k{i}", record)
        events.append(_ms_since(t0))
    return {"write_stream": stream, "set_event": events}
