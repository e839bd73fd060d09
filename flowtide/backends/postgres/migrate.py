"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied in order, each in its own
transaction, under a PostgreSQL advisory lock so that processes starting together apply each
migration once. Used by :meth:`PostgresBackend.open` and by ``flowtide db upgrade|status``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from flowtide.backends._sql import load_migrations

__all__ = ["MIGRATIONS", "Status", "status", "upgrade"]

MIGRATIONS = load_migrations("flowtide.backends.postgres")
LATEST = MIGRATIONS[-1][0] if MIGRATIONS else 0


@dataclass(frozen=True, slots=True)
class Status:
    schema: str
    version: int  # the newest applied migration (0: none)
    latest: int  # the newest this version of flowtide knows
    applied: list[tuple[int, str, str]]  # (version, name, applied_at ISO)

    @property
    def pending(self) -> list[tuple[int, str]]:
        done = {v for v, _, _ in self.applied}
        return [(v, name) for v, name, _ in MIGRATIONS if v not in done]


def _lock_key(schema: str) -> str:
    return f"flowtide:migrate:{schema}"


async def upgrade(con: asyncpg.Connection, schema: str) -> list[int]:
    """Apply the migrations ``schema`` lacks; return the versions applied now."""
    done: list[int] = []
    await con.execute("SELECT pg_advisory_lock(hashtext($1))", _lock_key(schema))
    try:
        await con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await con.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".flowtide_migrations ('
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await con.fetch(f'SELECT version FROM "{schema}".flowtide_migrations')
        applied = {r["version"] for r in rows}
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            async with con.transaction():
                await con.execute(f'SET LOCAL search_path = "{schema}"')
                await con.execute(sql)
                await con.execute(
                    f'INSERT INTO "{schema}".flowtide_migrations (version, name) VALUES ($1, $2)',
                    version,
                    name,
                )
            done.append(version)
    finally:
        await con.execute("SELECT pg_advisory_unlock(hashtext($1))", _lock_key(schema))
    return done


async def status(con: asyncpg.Connection, schema: str) -> Status:
    exists = await con.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f'"{schema}".flowtide_migrations'
    )
    applied: list[tuple[int, str, str]] = []
    if exists:
        rows = await con.fetch(
            f'SELECT version, name, applied_at FROM "{schema}".flowtide_migrations ORDER BY version'
        )
        applied = [(r["version"], r["name"], r["applied_at"].isoformat()) for r in rows]
    version = applied[-1][0] if applied else 0
    return Status(schema, version, LATEST, applied)
