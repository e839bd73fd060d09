"""The PostgreSQL backend (``postgresql://USER@HOST/DB?schema=flowtide``); needs the
``postgres`` extra (asyncpg)."""

from flowtide.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
