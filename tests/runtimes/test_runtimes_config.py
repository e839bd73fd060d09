"""The [runtimes] config section reaches a worker's pools."""

from __future__ import annotations

from pathlib import Path

from flowtide import App
from flowtide.config import load_config
from flowtide.engine.worker import Worker
from flowtide.registry import Registry
from flowtide.runtimes import PoolOptions, options_from_config
from flowtide.runtimes.pool import DEFAULT_MAX_JOBS


def test_options_from_config_defaults_and_values(tmp_path: Path) -> None:
    defaults = options_from_config(load_config(root=tmp_path, environ={}).runtimes)
    assert defaults["node"].size == PoolOptions().size
    assert (defaults["node"].max_inflight, defaults["python-process"].max_inflight) == (32, 1)
    assert defaults["node"].max_jobs is None  # the runtime's own default applies
    (tmp_path / "flowtide.toml").write_text(
        "[runtimes]\npython_process_pool = 2\nnode_pool = 3\nmax_jobs_per_child = 50\n"
        "max_memory_mb = 100\nnode_max_inflight = 4\ncancel_grace = '2s'\n"
    )
    opts = options_from_config(load_config(root=tmp_path, environ={}).runtimes)
    assert (opts["python-process"].size, opts["node"].size) == (2, 3)
    assert opts["node"].max_inflight == 4 and opts["node"].cancel_grace == 2.0
    assert opts["python-process"].max_jobs == 50 and opts["node"].max_memory_mb == 100.0


async def test_a_worker_builds_its_pools_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "flowtide.toml").write_text(
        "backend = 'memory://'\n[runtimes]\nnode_pool = 3\nnode_max_inflight = 5\n"
    )
    config = load_config(root=tmp_path, environ={})
    async with App(config, registry=Registry()) as app:
        worker = Worker(app.service)
        pool = worker.runtimes.get("python-process")
        assert pool.max_inflight == 1 and pool.max_jobs == DEFAULT_MAX_JOBS["python-process"]
        assert worker.runtimes.options["node"].size == 3
        assert worker.runtimes.options["node"].max_inflight == 5
        await worker.runtimes.stop()
