"""The command line with real long-running children: ``worker``, ``start --wait``,
``runs follow``, ``dev --port 0`` and graceful SIGTERM."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli_support import (
    Child,
    flowtide,
    spawn,
    wait_for,
    write_app,
)


def _is_worker_ready(line: str) -> bool:
    return line.startswith("flowtide worker: ready")


@pytest.fixture(scope="module")
def worker_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An app directory with a `flowtide worker` child process running against it."""
    root = write_app(tmp_path_factory.mktemp("cli-app"))
    with spawn(root, "worker", "--concurrency", "4") as worker:
        worker.wait_for_line(_is_worker_ready)
        yield root


def _gates(root: Path, name: str) -> tuple[Path, Path, str]:
    started, gate = root / f"{name}.started", root / f"{name}.gate"
    return started, gate, json.dumps({"started": str(started), "gate": str(gate)})


def test_start_wait_completed_and_failed(worker_app: Path) -> None:
    done = flowtide(worker_app, "start", "demo", "--wait", "--json", "--input", '{"a": 1}')
    assert done.code == 0, done.err
    view = done.json()
    assert view["status"] == "completed"
    assert view["result"] == {"finished": 1}
    assert view["steps"]["finish"]["status"] == "completed"

    human = flowtide(worker_app, "start", "demo", "--wait")
    assert human.code == 0, human.err
    lines = human.out.splitlines()
    assert "step.completed" in human.out and "finish" in human.out
    assert lines[-1].startswith(f"run {lines[0]} completed")

    failed = flowtide(worker_app, "start", "broken", "--wait")
    assert failed.code == 1
    assert "RuntimeError: boom" in failed.err and "Traceback" not in failed.err


def test_inspect_finished_runs(worker_app: Path) -> None:
    run_id = flowtide(worker_app, "start", "demo", "--wait", "--json").json()["run_id"]
    runs = flowtide(worker_app, "runs", "list", "--flow", "demo", "--json").json()["items"]
    assert runs[0]["run_id"] == run_id and runs[0]["status"] == "completed"

    shown = flowtide(worker_app, "runs", "show", run_id, "--json", "--events").json()
    types = [e["type"] for e in shown["events"]]
    assert types[0] == "flow.started" and types[-1] == "flow.completed"
    assert {"step.started", "step.completed", "emit", "log"} <= set(types)
    assert [e["seq"] for e in shown["events"]] == list(range(1, len(types) + 1))

    followed = flowtide(worker_app, "runs", "follow", run_id)
    assert followed.code == 0 and "flow.completed" in followed.out.splitlines()[-1]

    queues = {
        q["name"]: q["counts"]
        for q in flowtide(worker_app, "queues", "list", "--json").json()["items"]
    }
    assert queues["demo"]["completed"] >= 2

    finished = flowtide(worker_app, "runs", "cancel", run_id)
    assert finished.code != 0 and "already completed" in finished.error_line

    restarted = flowtide(worker_app, "runs", "restart", run_id, "--json")
    assert restarted.code == 0, restarted.err
    new_id = restarted.json()["run_id"]
    assert new_id != run_id
    assert flowtide(worker_app, "runs", "follow", new_id, "--timeout", "30").code == 0


def test_failed_jobs_listed_and_retry_conflict(worker_app: Path) -> None:
    run_id = flowtide(worker_app, "start", "broken", "--wait", "--json").json()["run_id"]
    jobs = flowtide(worker_app, "jobs", "list", "broken", "--state", "failed", "--json").json()
    job = next(j for j in jobs["items"] if j["run_id"] == run_id)
    assert job["job_id"] == f"{run_id}:explode" and job["error"]["type"] == "RuntimeError"
    human = flowtide(worker_app, "jobs", "list", "broken")
    assert human.code == 0 and job["job_id"] in human.out

    retry = flowtide(worker_app, "jobs", "retry", job["job_id"])
    assert retry.code != 0 and "restart the run instead" in retry.error_line
    missing = flowtide(worker_app, "jobs", "retry", "no-such-job")
    assert missing.code != 0 and "unknown job" in missing.error_line


def test_follow_live_and_wait_on_canceled_run(worker_app: Path) -> None:
    started, gate, payload = _gates(worker_app, "follow")
    run_id = flowtide(worker_app, "start", "gated", "--input", payload).out.strip()
    with spawn(worker_app, "runs", "follow", run_id, "--json") as follower:
        follower.wait_for_line(lambda line: '"step.started"' in line)
        wait_for(started.exists, what="the gated step started")
        gate.touch()
        assert follower.wait_exit(30) == 0
    assert json.loads(follower.out[-1])["type"] == "flow.completed"

    started, gate, payload = _gates(worker_app, "cancel")
    with spawn(worker_app, "start", "gated", "--wait", "--input", payload) as waiter:
        run_id = waiter.wait_for_line(lambda line: len(line) == 36)
        wait_for(started.exists, what="the gated step started")
        assert flowtide(worker_app, "runs", "cancel", run_id).code == 0
        assert waiter.wait_exit(30) == 2
        gate.touch()  # let the handler return; the run stays canceled
    assert flowtide(worker_app, "runs", "show", run_id, "--json").json()["status"] == "canceled"


def test_worker_sigterm_finishes_in_flight_job_and_exits_0(tmp_path: Path) -> None:
    root = write_app(tmp_path)
    started, gate, payload = _gates(root, "term")
    run_id = flowtide(root, "start", "gated", "--input", payload).out.strip()
    worker = Child(root, "worker")
    try:
        worker.wait_for_line(_is_worker_ready)
        wait_for(started.exists, what="the gated step started")
        worker.proc.terminate()
        wait_for(lambda: "shutting down" in worker.stderr, what="the worker began shutting down")
        assert worker.proc.poll() is None  # still draining the in-flight job
        gate.touch()
        assert worker.wait_exit(20) == 0, worker.stderr  # within the 20s grace period
    finally:
        worker.stop()
    assert flowtide(root, "runs", "show", run_id, "--json").json()["status"] == "completed"


def test_dev_port_0_prints_url_and_serves_healthz(tmp_path: Path) -> None:
    root = write_app(tmp_path)
    with spawn(root, "dev", "--port", "0") as dev:
        line = dev.wait_for_line(lambda text: text.startswith("flowtide dev: http://"))
        url = line.split()[2]
        assert not url.endswith(":0")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            assert response.status == 200
        dev.wait_for_line(lambda text: "worker ready" in text)
        done = flowtide(root, "start", "demo", "--wait", "--json", "--timeout", "30")
        assert done.code == 0 and done.json()["status"] == "completed"
        assert dev.stop() == 0
