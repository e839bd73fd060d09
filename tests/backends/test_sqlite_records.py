"""SQLite specifics of records: expired rows, absent already, are deleted now and then by a
later write of records (SQLite has no retention task)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flowtide._util.clock import now
from flowtide.backends.sqlite import SQLiteBackend


async def test_a_write_of_records_deletes_expired_ones(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.open()
    try:
        ts = now()
        for i in range(3):
            await backend.put_record("idem", f"old{i}", {"i": i}, expires_at=ts - 1)
        await backend.put_record("idem", "live", 1, expires_at=ts + 60)
        backend._next_purge = 0.0  # due now (it runs at most once a minute)
        assert await backend.add_to_counter("stats", "n") == 1
        with sqlite3.connect(path) as db:
            keys = {k for (k,) in db.execute("SELECT key FROM records")}
        assert keys == {"live", "n"}
    finally:
        await backend.close()
