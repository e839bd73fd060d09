"""DBOS Transact (``dbos``) peer for the flowtide benchmark workloads, SQLite system DB.

* The parent never constructs the ``DBOS`` singleton: it creates the schema with
  ``DBOS.migrate(url)``, then enqueues through a ``DBOSClient`` by workflow name, so the
  only process executing workflows is the worker child (``_dbos_worker``), which runs
  ``DBOS.launch()`` against the same SQLite file. DBOS supports this multi-process setup
  on SQLite (IMMEDIATE transactions, 30 s busy timeout, rollback journal, no WAL).
* The queue is registered with DBOS defaults: ``worker_concurrency=None`` (the one worker
  process runs every workflow it claims concurrently on its thread pool) and
  ``polling_interval_sec=1.0``. DBOS queues are poll-based, so a per-process concurrency
  of 1 degenerates to one workflow per poll (about 1 job/s at the default interval).
* enqueue: ``value`` is DBOS's bulk path, ``DBOSClient.enqueue_in_transaction`` for all N
  inside one caller-owned SQLAlchemy transaction; the note also gives the per-call
  ``DBOSClient.enqueue`` rate (one transaction per workflow) on a second fresh file.
* chain3: one workflow calling three ``@DBOS.step`` functions, each checkpointed.
* latency: the worker child runs the two-step workflow directly (in-process, one at a
  time, no queue hop, since the steps run inside one workflow); the gap is between the
  end of step 1 and the start of step 2, i.e. DBOS checkpointing step 1's output.
* state_get: DBOS's durable key-value item is a workflow event. The worker child runs one
  workflow that calls ``DBOS.set_event(key, value)`` (committed, checkpointed) and then a
  ``@DBOS.step`` that times n ``DBOS.get_event(workflow_id, key)`` reads of it. Inside a
  step get_event is a plain read (not checkpointed, no durable timeout); on an event that
  is already set it runs two short SELECT transactions (the existence check, then the
  value read), each ``BEGIN IMMEDIATE`` as DBOS configures SQLite.
* append: the worker child runs one workflow that times n ``DBOS.write_stream(key,
  record)`` calls (one append to the workflow's stream each, checkpointed as an
  operation: stream INSERT + operation_outputs INSERT in one transaction). The note also
  gives n ``DBOS.set_event(f"k{i}", record)`` calls (event upsert + history row +
  checkpoint in one transaction) from the same workflow.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, EnqueueOptions

from . import _dbos_app
from ._common import (
    PACKAGE_NAME,
    Child,
    Deadline,
    PeerResult,
    child_process,
    latency_result,
    percentile,
    rate,
    read_ready_time,
    temp_dir,
    validate,
    wait_for,
)

NAME = "dbos"

_WORKER_MODULE = f"{PACKAGE_NAME}._dbos_worker"
_WORKER_DESC = (
    "1 DBOS worker child (queue defaults: worker_concurrency=None, polling_interval_sec=1.0)"
)


def _db_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _options(workflow: str) -> EnqueueOptions:
    return {"workflow_name": workflow, "queue_name": _dbos_app.QUEUE_NAME}


@contextlib.contextmanager
def _client(url: str) -> Iterator[DBOSClient]:
    client = DBOSClient(system_database_url=url, application_name=_dbos_app.APP_NAME)
    try:
        yield client
    finally:
        client.destroy()


def _sqlite_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine set up the way DBOS sets up its own SQLite engine."""
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    return engine


def _bulk_enqueue(url: str, client: DBOSClient, workflow: str, n: int, deadline: Deadline) -> None:
    """Enqueue n workflows in a single transaction (``enqueue_in_transaction``)."""
    engine = _sqlite_engine(url)
    try:
        options = _options(workflow)
        with engine.begin() as conn:
            for i in range(n):
                client.enqueue_in_transaction(conn, options, i)
                if i % 1000 == 999:
                    deadline.check(f"bulk-enqueueing ({i + 1}/{n} done)")
    finally:
        engine.dispose()


def _per_call_enqueue(client: DBOSClient, workflow: str, n: int, deadline: Deadline) -> str:
    """Enqueue n workflows one ``DBOSClient.enqueue`` call (transaction) each; last id."""
    options = _options(workflow)
    last = ""
    for i in range(n):
        last = client.enqueue(options, i).get_workflow_id()
        if i % 200 == 199:
            deadline.check(f"enqueueing ({i + 1}/{n} done)")
    return last


def _status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("select status, count(*) from workflow_status group by status")
    return {str(status): int(count) for status, count in rows}


def _succeeded(conn: sqlite3.Connection, n: int, child: Child) -> bool:
    counts = _status_counts(conn)
    if counts.get("ERROR", 0):
        raise RuntimeError(
            f"{counts['ERROR']} DBOS workflows failed; worker log tail:\n"
            f"{child.log_path.read_text(errors='replace')[-2000:]}"
        )
    return counts.get("SUCCESS", 0) >= n


@contextlib.contextmanager
def _worker(
    tmp: Path, url: str, deadline: Deadline, extra: list[str] | None = None
) -> Iterator[tuple[Child, float]]:
    """Start the DBOS worker child, wait until DBOS.launch() returned; yield it, t_ready."""
    ready = tmp / "worker.ready"
    args = ["--db-url", url, "--ready", str(ready), *(extra or [])]
    with child_process(_WORKER_MODULE, args, {}, tmp / "worker.log") as child:
        wait_for(ready.exists, deadline, "waiting for the DBOS worker to launch", child)
        t_ready = read_ready_time(ready)
        assert t_ready is not None
        yield child, t_ready


def _prepare(path: Path) -> str:
    url = _db_url(path)
    DBOS.migrate(url)
    return url


def _register_queue(client: DBOSClient) -> None:
    # DBOS defaults; see the module docstring.
    client.register_queue(_dbos_app.QUEUE_NAME)


def _run_enqueue(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _prepare(tmp / "single.sqlite")
    with _client(url) as client:
        t0 = time.perf_counter()
        _per_call_enqueue(client, _dbos_app.NOOP_WF, n, deadline)
        elapsed = time.perf_counter() - t0
    _check_enqueued(tmp / "single.sqlite", n)
    note = f"DBOSClient.enqueue, one transaction each: {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _run_enqueue_bulk(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    url = _prepare(tmp / "bulk.sqlite")
    with _client(url) as client:
        t0 = time.perf_counter()
        _bulk_enqueue(url, client, _dbos_app.NOOP_WF, n, deadline)
        elapsed = time.perf_counter() - t0
    _check_enqueued(tmp / "bulk.sqlite", n)
    note = f"DBOSClient.enqueue_in_transaction, all {n} in one transaction: {elapsed:.3f} s"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": note}


def _check_enqueued(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    try:
        queued = _status_counts(conn).get("ENQUEUED", 0)
    finally:
        conn.close()
    if queued != n:
        raise RuntimeError(f"expected {n} ENQUEUED workflows in {path.name}, found {queued}")


def _run_drain(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "dbos.sqlite"
    url = _prepare(db_path)
    with _client(url) as client:
        _register_queue(client)
        _bulk_enqueue(url, client, _dbos_app.NOOP_WF, n, deadline)
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        t_spawn = time.time()
        with _worker(tmp, url, deadline) as (child, t_ready):
            wait_for(
                lambda: _succeeded(conn, n, child),
                deadline,
                f"draining {n} workflows",
                child,
                interval=0.02,
            )
            t_done = time.time()
    finally:
        conn.close()
    elapsed = t_done - t_ready
    return {
        "value": rate(n, elapsed),
        "unit": "jobs/s",
        "note": f"{_WORKER_DESC}; no-op workflows (no steps); timed from DBOS.launch() "
        f"returning to the last SUCCESS row (includes the first queue poll, up to 1 s); "
        f"{n} jobs in {elapsed:.3f} s ({t_done - t_spawn:.3f} s incl. process start)",
    }


def _run_chain3(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    db_path = tmp / "dbos.sqlite"
    url = _prepare(db_path)
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        with _client(url) as client:
            _register_queue(client)
            with _worker(tmp, url, deadline) as (child, _t_ready):
                t0 = time.perf_counter()
                last_id = _per_call_enqueue(client, _dbos_app.CHAIN3_WF, n, deadline)
                wait_for(
                    lambda: _succeeded(conn, n, child),
                    deadline,
                    f"waiting for {n} chain3 workflows",
                    child,
                    interval=0.02,
                )
                elapsed = time.perf_counter() - t0
                final: object = client.retrieve_workflow(last_id).get_result()
    finally:
        conn.close()
    if final != {"run": n - 1, "seq": 3}:
        raise RuntimeError(f"unexpected chain3 result {final!r}")
    return {
        "value": rate(n, elapsed),
        "unit": "runs/s",
        "note": f"{_WORKER_DESC}; one workflow calling three @DBOS.step functions, enqueued "
        f"per call with DBOSClient.enqueue; timed from first enqueue to the last SUCCESS; "
        f"{n} runs in {elapsed:.3f} s",
    }


def _run_probe(tmp: Path, n: int, deadline: Deadline, mode: str) -> Any:
    """Run one ``_dbos_worker --mode`` probe in a fresh worker child; its JSON result."""
    url = _prepare(tmp / "dbos.sqlite")
    out = tmp / f"{mode}.json"
    extra = ["--mode", mode, "--n", str(n), "--out", str(out)]
    with _worker(tmp, url, deadline, extra) as (child, _t_ready):
        wait_for(out.exists, deadline, f"waiting for the {mode} probe (n={n})", child, 0.02)
        return json.loads(out.read_text())


def _run_latency(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    samples: list[list[float]] = _run_probe(tmp, n, deadline, "latency")
    if len(samples) != n:
        raise RuntimeError(f"expected {n} latency samples, got {len(samples)}")
    gaps_ms = [(t2_start - t1_end) * 1000.0 for t1_end, t2_start in samples]
    return latency_result(
        gaps_ms,
        "workflow lat1 -> lat2 run directly in the worker child (in-process, one at a "
        "time, no queue hop); gap = perf_counter at lat2 start - perf_counter at lat1 "
        "return: includes checkpointing lat1's output to SQLite",
    )


def _run_state_get(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    timings: list[float] = _run_probe(tmp, n, deadline, "state_get")
    if len(timings) != n:
        raise RuntimeError(f"expected {n} get_event timings, got {len(timings)}")
    return latency_result(
        timings,
        "DBOS.get_event(workflow_id, key) of an event already set by DBOS.set_event "
        "(pickled dict with a 64-char string), n reads one after another inside a "
        "@DBOS.step of the same workflow in the worker child (plain read, not checkpointed)",
    )


def _run_append(tmp: Path, n: int, deadline: Deadline) -> PeerResult:
    out: dict[str, list[float]] = _run_probe(tmp, n, deadline, "append")
    stream, events = out["write_stream"], out["set_event"]
    if len(stream) != n or len(events) != n:
        raise RuntimeError(f"expected {n} timings each, got {len(stream)} / {len(events)}")
    return latency_result(
        stream,
        "DBOS.write_stream('log', {'message': i}) called n times from one workflow body in "
        "the worker child, each a checkpointed operation (stream row + operation_outputs "
        "row, one transaction); for comparison DBOS.set_event(f'k{i}', {'message': i}) n "
        f"times from the same workflow: p50 {percentile(events, 50):.3f} ms, "
        f"p95 {percentile(events, 95):.3f} ms",
    )


_RUNNERS = {
    "enqueue": _run_enqueue,
    "enqueue_bulk": _run_enqueue_bulk,
    "drain": _run_drain,
    "chain3": _run_chain3,
    "latency": _run_latency,
    "state_get": _run_state_get,
    "append": _run_append,
}


def run(workload: str, n: int) -> PeerResult | None:
    """Run one workload against a fresh SQLite system database in a temporary directory."""
    validate(workload, n)
    deadline = Deadline(f"{NAME}:{workload}")
    with temp_dir(f"{NAME}-{workload}") as tmp:
        return _RUNNERS[workload](tmp, n, deadline)
