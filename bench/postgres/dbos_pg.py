"""DBOS Transact on a PostgreSQL system database, on the drain and three-step workloads::

    python -m bench.postgres.dbos_pg [--quick] [--url postgresql://root@127.0.0.1/test]

Reuses the SQLite peer's DBOS app and worker child (``bench.peers``) with a fresh PostgreSQL
database per workload (``CREATE DATABASE``, dropped after), since DBOS keeps its tables in a
schema of its own inside the system database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import sqlalchemy as sa
from dbos import DBOS

from bench.peers import _dbos_app
from bench.peers._common import Deadline, PeerResult, rate, temp_dir, wait_for
from bench.peers.dbos_peer import _client, _options, _register_queue, _worker
from bench.postgres.flowtide_postgres import DEFAULT_URL, SIZES


async def _admin(server: str, sql: str) -> None:
    con = await asyncpg.connect(server)
    try:
        await con.execute(sql)
    finally:
        await con.close()


@contextlib.contextmanager
def _database(server: str) -> Iterator[str]:
    name = f"bench_dbos_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(server)
    url = urlunsplit(("postgresql", parts.netloc, f"/{name}", "", ""))
    try:
        DBOS.migrate(url)
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _succeeded(engine: sa.Engine, n: int) -> bool:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, count(*) FROM dbos.workflow_status GROUP BY status")
        ).all()
    counts = {str(status): int(count) for status, count in rows}
    if counts.get("ERROR", 0):
        raise RuntimeError(f"{counts['ERROR']} DBOS workflows failed")
    return counts.get("SUCCESS", 0) >= n


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _drain(server: str, n: int, deadline: Deadline) -> PeerResult:
    with temp_dir("dbos-postgres-drain") as tmp, _database(server) as url:
        engine = _engine(url)
        try:
            with _client(url) as client:
                _register_queue(client)
                options = _options(_dbos_app.NOOP_WF)
                with engine.begin() as conn:
                    for i in range(n):
                        client.enqueue_in_transaction(conn, options, i)
            with _worker(tmp, url, deadline) as (child, t_ready):
                ok = lambda: _succeeded(engine, n)  # noqa: E731
                wait_for(ok, deadline, f"draining {n} workflows", child, interval=0.02)
                elapsed = time.time() - t_ready
        finally:
            engine.dispose()
    note = "1 DBOS worker child, queue defaults (polling_interval_sec=1.0); no-op workflows"
    return {"value": rate(n, elapsed), "unit": "jobs/s", "note": f"{note}; {elapsed:.3f} s"}


def _chain3(server: str, n: int, deadline: Deadline) -> PeerResult:
    with temp_dir("dbos-postgres-chain3") as tmp, _database(server) as url:
        engine = _engine(url)
        try:
            with _client(url) as client:
                _register_queue(client)
                with _worker(tmp, url, deadline) as (child, _):
                    t0 = time.perf_counter()
                    options = _options(_dbos_app.CHAIN3_WF)
                    for i in range(n):
                        client.enqueue(options, i)
                    ok = lambda: _succeeded(engine, n)  # noqa: E731
                    wait_for(ok, deadline, f"{n} chain3 workflows", child, interval=0.02)
                    elapsed = time.perf_counter() - t0
        finally:
            engine.dispose()
    note = "one workflow calling three @DBOS.step functions, enqueued per call"
    return {"value": rate(n, elapsed), "unit": "runs/s", "note": f"{note}; {elapsed:.3f} s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for workload, runner in (("drain", _drain), ("chain3", _chain3)):
        n = SIZES[workload] // (10 if args.quick else 1)
        try:
            print("dbos", workload, n, runner(args.url, n, Deadline(f"dbos:{workload}")))
        except Exception as exc:
            print("dbos", workload, n, f"failed: {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
