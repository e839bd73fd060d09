"""huey (``huey.SqliteHuey``) peer for the flowtide benchmark workloads.

* enqueue: ``task(...)`` (= ``huey.enqueue``) once per job. huey has no batch-enqueue API:
  every call is its own ``BEGIN EXCLUSIVE`` transaction on the SQLite file (WAL journal,
  huey's default storage options).
* drain / chain3 / latency: one ``huey_consumer`` child process with its default
  configuration (one worker, thread worker type, default polling back-off, INFO log to a
  file). The parent observes completion by counting result rows in huey's ``kv`` table
  (every benchmark task returns a value, so huey stores one result row per task).
* chain3 and latency use huey pipelines (``task.s(...).then(next_task)``): the consumer
  enqueues the next step when a step returns, passing the returned dict as kwargs.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import _huey_app
from ._common import (
    PACKAGE_NAME,
    STATE_KEY,
    STATE_VALUE,
    Child,
    Deadline,
    PeerResult,
    append_record,
    child_process,
    latency_result,
    rate,
    read_ready_time,
    temp_dir,
    validate,
    wait_for,
)

NAME = "huey"

_APP_PATH = f"{PACKAGE_NAME}._huey_app.huey"
_CONSUMER_MODULE = "huey.bin.huey_consumer"
_CONSUMER_ARGS = ["--workers", "1", "--worker-type", "thread"]
_CONSUMER_DESC = "1 huey_consumer child (-w 1 -k thread, default back-off)"


def _result_count(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "select count(*) from kv where queue = ?", (_huey_app.QUEUE_NAME,)
    ).fetchone()
    return int(row[0])


def _has_result(huey: Any, key: str) -> Callable[[], bool]:
    return lambda: bool(huey.storage.has_data_for_key(key))


@contextlib.contextmanager
def _consumer(tmp: Path, db_path: Path, deadline: Deadline) -> Iterator[tuple[Child, float]]:
    """Start the consumer child, wait until its worker thread is up; yield it and t_ready."""
    ready_path = tmp / "consumer.ready"
    env = {_huey_app.DB_ENV: str(db_path), _huey_app.READY_ENV: str(ready_path)}
    with child_process(
        _CONSUMER_MODULE, [_APP_PATH, *_CONSUMER_ARGS], env, tmp / "consumer.log"
    ) as child:
        wait_for(ready_path.exists, deadline, "waiting for the huey consumer to start", child)
        t_ready = read_ready_time(ready_path)
        assert t_ready is not None
        yield child, t_ready


def _enqueue_noops(tasks: _huey_app.Tasks, n: int, deadline: Deadline) -> None:
    for i in range(n):
        tasks.noop(i)
        if i % 1000 == 999:
            deadline.check(f"enqueueing ({i + 1}/{n} done)")


def _run_enqueue(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    huey, tasks = _huey_app.make_huey(str(tmp / "huey.db"))
    try:
        t0 = time.perf_counter()
        _enqueue_noops(tasks, n, deadline)
        elapsed = time.perf_counter() - t0
        queued = int(huey.pending_count())
    finally:
        huey.storage.close()
    if queued != n:
        raise RuntimeError(f"expected {n} queued jobs, found {queued}")
    return {
        "value": rate(n, elapsed),
        "unit": "jobs/s",
        "note": f"huey.enqueue per job, one SQLite transaction each (no batch API); "
        f"{n} jobs in {elapsed:.3f} s",
    }


def _run_drain(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "huey.db"
    huey, tasks = _huey_app.make_huey(str(db_path))
    try:
        _enqueue_noops(tasks, n, deadline)
    finally:
        huey.storage.close()
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        t_spawn = time.time()
        with _consumer(tmp, db_path, deadline) as (child, t_ready):
            wait_for(lambda: _result_count(conn) >= n, deadline, f"draining {n} jobs", child)
            t_done = time.time()
    finally:
        conn.close()
    elapsed = t_done - t_ready
    return {
        "value": rate(n, elapsed),
        "unit": "jobs/s",
        "note": f"{_CONSUMER_DESC}; timed from worker-thread start to the last result row; "
        f"{n} jobs in {elapsed:.3f} s ({t_done - t_spawn:.3f} s incl. process start)",
    }


def _run_chain3(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "huey.db"
    huey, tasks = _huey_app.make_huey(str(db_path))
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        with _consumer(tmp, db_path, deadline) as (child, _t_ready):
            t0 = time.perf_counter()
            last: Any = None
            for i in range(n):
                last = huey.enqueue(tasks.step1.s(i).then(tasks.step2).then(tasks.step3))
                if i % 200 == 199:
                    deadline.check(f"enqueueing chains ({i + 1}/{n} done)")
            wait_for(
                lambda: _result_count(conn) >= 3 * n,
                deadline,
                f"waiting for {n} three-step chains",
                child,
            )
            elapsed = time.perf_counter() - t0
            final = list(last)[-1].get()
    finally:
        conn.close()
        huey.storage.close()
    if final != {"run": n - 1, "seq": 3}:
        raise RuntimeError(f"unexpected chain result {final!r}")
    return {
        "value": rate(n, elapsed),
        "unit": "runs/s",
        "note": f"{_CONSUMER_DESC}; pipeline step1.then(step2).then(step3), dict passed as "
        f"kwargs; timed from first enqueue to the last step3 result; "
        f"{n} runs in {elapsed:.3f} s",
    }


def _run_latency(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "huey.db"
    huey, tasks = _huey_app.make_huey(str(db_path))
    gaps_ms: list[float] = []
    try:
        with _consumer(tmp, db_path, deadline) as (child, _t_ready):
            for i in range(n):
                results = list(huey.enqueue(tasks.lat1.s(i).then(tasks.lat2)))
                wait_for(
                    _has_result(huey, results[-1].id),
                    deadline,
                    f"waiting for latency chain {i + 1}/{n}",
                    child,
                    interval=0.001,
                )
                out = results[-1].get()
                gaps_ms.append((out["t2_start"] - out["t1_end"]) * 1000.0)
    finally:
        huey.storage.close()
    return latency_result(
        gaps_ms,
        f"{_CONSUMER_DESC}; pipeline lat1.then(lat2) run one at a time; gap = "
        "perf_counter at lat2 start - perf_counter at lat1 return (both in the worker): "
        "includes storing lat1's result, enqueueing lat2 and dequeuing it",
    )


def _run_state_get(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    huey, _tasks = _huey_app.make_huey(str(tmp / "huey.db"))
    timings: list[float] = []
    try:
        huey.put(STATE_KEY, STATE_VALUE)
        for i in range(n):
            t0 = time.perf_counter()
            value = huey.get(STATE_KEY, peek=True)
            timings.append((time.perf_counter() - t0) * 1000.0)
            if value != STATE_VALUE:
                raise RuntimeError(f"read {value!r} back for {STATE_KEY!r}")
            if i % 100 == 99:
                deadline.check(f"reading ({i + 1}/{n} done)")
    finally:
        huey.storage.close()
    return latency_result(
        timings,
        "huey.get(key, peek=True) of one committed kv item (pickled dict with a 64-char "
        "string), in the parent process, no consumer running: one autocommit SELECT on the "
        "SqliteHuey file plus unpickling",
    )


def _run_append(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "huey.db"
    huey, _tasks = _huey_app.make_huey(str(db_path))
    timings: list[float] = []
    try:
        for i in range(n):
            record = append_record(i)
            t0 = time.perf_counter()
            huey.put(f"k{i}", record)
            timings.append((time.perf_counter() - t0) * 1000.0)
            if i % 100 == 99:
                deadline.check(f"appending ({i + 1}/{n} done)")
    finally:
        huey.storage.close()
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        stored = _result_count(conn)
    finally:
        conn.close()
    if stored != n:
        raise RuntimeError(f"expected {n} kv rows, found {stored}")
    return latency_result(
        timings,
        "huey.put(f'k{i}', {'message': i}) per call, in the parent process: pickling plus "
        "one BEGIN EXCLUSIVE / INSERT OR REPLACE into kv / COMMIT each (WAL, huey defaults)",
    )


_RUNNERS = {
    "enqueue": _run_enqueue,
    "drain": _run_drain,
    "chain3": _run_chain3,
    "latency": _run_latency,
    "state_get": _run_state_get,
    "append": _run_append,
}


def run(workload: str, n: int) -> PeerResult | None:
    """Run one workload against a fresh SQLite file in a temporary directory."""
    validate(workload, n)
    if workload not in _RUNNERS:
        return None  # huey has no batch-enqueue API
    deadline = Deadline(f"{NAME}:{workload}")
    with temp_dir(f"{NAME}-{workload}") as tmp:
        return _RUNNERS[workload](tmp, n, deadline)
