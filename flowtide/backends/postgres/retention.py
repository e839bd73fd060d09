"""Retention: finished jobs and old run histories are deleted in small batches.

Policy (URL parameters, durations like ``"7d"`` or ``never``):

- ``retain_jobs`` (default ``7d``): finished jobs (completed, failed, canceled) older than this
  are deleted: standalone function jobs with their job-scoped state, and the step jobs of runs
  that ended (a run's history stays in its events).
- ``retain_runs`` (default ``30d``): runs that ended longer ago are deleted with their events,
  jobs and state.
- ``retention_batch`` (default 500 rows) per transaction, so no lock is held for long;
  ``retention_interval`` (default ``1m``) between sweeps.

Every sweep also deletes expired records (absent already for every operation), in batches of
the same size, whatever the policy.

One process at a time sweeps a schema (``pg_try_advisory_lock``); the others skip the turn.
After a sweep that deleted rows, the tables are vacuumed (plain VACUUM: it blocks nobody), so
their size stays bounded under a steady load without waiting for autovacuum's next turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from flowtide._util.clock import now
from flowtide._util.durations import parse_duration
from flowtide.backends._sql import load_queries

__all__ = ["Policy", "parse_policy", "sweep"]

logger = logging.getLogger("flowtide.postgres")
Q = load_queries("flowtide.backends.postgres")
VACUUMED = ("jobs", "runs", "events", "state")  # and records, after deleting some


KEEP_JOBS = 7 * 86400.0
KEEP_RUNS = 30 * 86400.0
BATCH = 500


@dataclass(frozen=True, slots=True)
class Policy:
    jobs: float | None = KEEP_JOBS  # seconds; None keeps them
    runs: float | None = KEEP_RUNS
    batch: int = BATCH
    interval: float = 60.0
    vacuum: bool = True


def _keep(value: str | None, default: float | None) -> float | None:
    if value is None:
        return default
    if value.strip().lower() in ("never", "forever", "none", ""):
        return None
    return parse_duration(value)


def parse_policy(params: dict[str, str]) -> Policy:
    """The policy from the URL's parameters; ValueError names the bad one."""
    return Policy(
        jobs=_keep(params.get("retain_jobs"), KEEP_JOBS),
        runs=_keep(params.get("retain_runs"), KEEP_RUNS),
        batch=max(1, int(params.get("retention_batch", BATCH))),
        interval=parse_duration(params.get("retention_interval", "60s")),
        vacuum=params.get("retention_vacuum", "1") not in ("0", "false", "no"),
    )


def _lock_key(schema: str) -> str:
    return f"flowtide:retention:{schema}"


async def sweep(pool: asyncpg.Pool, schema: str, policy: Policy) -> dict[str, int] | None:
    """Delete what the policy no longer keeps, batch by batch; None if another process is
    sweeping this schema right now. Returns the number of jobs and runs deleted (expired records
    are deleted as well, not counted)."""
    async with pool.acquire() as con:
        if not await con.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", _lock_key(schema)):
            return None
        try:
            ts = now()
            deleted = {"jobs": 0, "runs": 0}
            for kind, keep in (("runs", policy.runs), ("jobs", policy.jobs)):
                if keep is None:
                    continue
                while True:
                    n: int = await con.fetchval(Q[f"retention_{kind}"], ts - keep, policy.batch)
                    deleted[kind] += n
                    if n < policy.batch:
                        break
                    await asyncio.sleep(0)  # let others use the loop between batches
            records = 0
            while True:
                n = await con.fetchval(Q["retention_records"], ts, policy.batch)
                records += n
                if n < policy.batch:
                    break
                await asyncio.sleep(0)
            if policy.vacuum:
                tables = list(VACUUMED) if deleted["jobs"] or deleted["runs"] else []
                tables += ["records"] if records else []
                for table in tables:
                    await con.execute(f"VACUUM {table}")
            return deleted
        finally:
            try:
                await con.execute("SELECT pg_advisory_unlock(hashtext($1))", _lock_key(schema))
            except BaseException:
                # a pooled connection is not reset when released: the lock goes with it
                con.terminate()
                raise


async def run_forever(pool: asyncpg.Pool, schema: str, policy: Policy) -> None:
    while True:
        await asyncio.sleep(policy.interval)
        try:
            result = await sweep(pool, schema, policy)
            if result and (result["jobs"] or result["runs"]):
                logger.debug("retention deleted %s", result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("retention sweep failed: %s", exc)
