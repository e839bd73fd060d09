"""GET /api/queues reports ``throughput`` (jobs completed in about the last minute) where the
backend keeps it (Redis), and null elsewhere; the worker's periodic stats line (issue 3.6)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from flowtide.engine.stats import format_stats, report_stats
from tests import _backend_redis
from tests.integration.test_api_support import api_harness


async def test_redis_queues_report_throughput(tmp_path: Path) -> None:
    reason = _backend_redis.skip()
    if reason:
        pytest.skip(reason)
    url = _backend_redis.url(tmp_path)
    try:
        async with api_harness(url, tmp_path) as api:
            ids = [
                (
                    await api.client.post(
                        "/api/jobs", json={"function": "flaky", "input": {"n": 1}}
                    )
                ).json()["job_id"]
                for _ in range(3)
            ]
            for job_id in ids:
                await api.wait_job(job_id, "completed")
            r = await api.client.get("/api/queues")
            assert r.status_code == 200
            queues = {q["name"]: q for q in r.json()["items"]}
            assert queues["emails"]["counts"]["completed"] == 3
            assert queues["emails"]["throughput"] == 3
            assert queues["idle"]["throughput"] == 0
    finally:
        await _backend_redis.cleanup(url)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_other_backends_answer_null_throughput(backend: str, tmp_path: Path) -> None:
    async with api_harness(backend, tmp_path) as api:
        items = (await api.client.get("/api/queues")).json()["items"]
        assert items and all(q["throughput"] is None for q in items)


def test_stats_line_shows_depth_and_rate() -> None:
    counts = {"emails": {"waiting": 3, "active": 2}, "other": {"waiting": 9}}
    line = format_stats(counts, 120, 12.5, {"emails"})
    assert line == "stats: 120 jobs done (12.5 jobs/s); queues: emails waiting=3 active=2 delayed=0"


async def test_stats_reporter_logs_periodically(
    caplog: pytest.LogCaptureFixture, wait_until: Any
) -> None:
    class FakeBackend:
        async def queue_counts(self) -> dict[str, dict[str, int]]:
            return {"q": {"waiting": 4}}

    class FakeWorker:
        processed = 0

    worker = FakeWorker()
    caplog.set_level(logging.INFO, logger="flowtide.worker")
    task = asyncio.create_task(report_stats(FakeBackend(), worker, 0.05))  # type: ignore[arg-type]
    worker.processed = 10

    def stats_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("stats:")]

    await wait_until(lambda: len(stats_lines()) >= 2, timeout=5)  # one line per interval
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    lines = stats_lines()
    assert "10 jobs done" in lines[0] and "q waiting=4" in lines[0]
    assert await report_stats(FakeBackend(), worker, 0) is None  # type: ignore[arg-type]
