"""The command line without a worker: listing, starting, canceling, and one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.integration.test_cli_support import BROKEN_MODULE, flowtide, write_app


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(tmp_path)


def test_flows_list_and_show_json(app_dir: Path) -> None:
    listed = flowtide(app_dir, "flows", "list", "--json")
    assert listed.code == 0, listed.err
    names = {f["name"] for f in listed.json()["items"]}
    assert names == {"demo", "broken", "typed", "gated"}

    shown = flowtide(app_dir, "flows", "show", "demo", "--json")
    assert shown.code == 0, shown.err
    flow = shown.json()
    assert flow["entry"] == "begin"
    assert [s["name"] for s in flow["steps"]] == ["begin", "finish"]
    assert flow["edges"] == [{"from": "begin", "to": "finish", "token": "demo.begun"}]

    human = flowtide(app_dir, "flows", "show", "demo")
    assert human.code == 0 and "finish" in human.out


def test_start_without_worker_then_list_show_jobs_and_cancel(app_dir: Path) -> None:
    started = flowtide(app_dir, "start", "demo", "--input", '{"order": 7}')
    assert started.code == 0, started.err
    run_id = started.out.strip()
    assert len(run_id.splitlines()) == 1 and run_id

    runs = flowtide(app_dir, "runs", "list", "--json").json()
    assert [(r["run_id"], r["status"]) for r in runs["items"]] == [(run_id, "running")]
    assert flowtide(app_dir, "runs", "list", "--status", "completed", "--json").json() == {
        "items": [],
        "next_cursor": None,
    }

    jobs = flowtide(app_dir, "jobs", "list", "demo", "--json").json()["items"]
    assert [(j["job_id"], j["state"]) for j in jobs] == [(f"{run_id}:begin", "waiting")]
    queues = {q["name"]: q for q in flowtide(app_dir, "queues", "list", "--json").json()["items"]}
    assert queues["demo"]["counts"]["waiting"] == 1
    assert set(queues) >= {"demo", "broken", "typed", "gated"}

    canceled = flowtide(app_dir, "runs", "cancel", run_id)
    assert canceled.code == 0, canceled.err
    view = flowtide(app_dir, "runs", "show", run_id, "--json").json()
    assert view["status"] == "canceled" and view["input"] == {"order": 7}

    again = flowtide(app_dir, "runs", "cancel", run_id)
    assert again.code != 0 and again.out == ""
    assert "already canceled" in again.error_line


def test_input_from_file_and_invalid_input(app_dir: Path) -> None:
    (app_dir / "order.json").write_text(json.dumps({"id": 3}))
    ok = flowtide(app_dir, "start", "typed", "--input", "@order.json", "--json")
    assert ok.code == 0, ok.err
    assert ok.json()["flow"] == "typed"

    bad = flowtide(app_dir, "start", "typed", "--input", '{"id": "x"}')
    assert bad.code != 0 and bad.out == ""
    line = bad.error_line
    assert "invalid input for flow 'typed'" in line and "id:" in line

    not_json = flowtide(app_dir, "start", "typed", "--input", "{nope")
    assert not_json.code != 0 and "not valid JSON" in not_json.error_line


def test_unknown_flow_and_run(app_dir: Path) -> None:
    result = flowtide(app_dir, "start", "nope")
    assert result.code != 0 and result.out == ""
    assert "unknown flow 'nope'" in result.error_line
    for args in (("runs", "show", "x1"), ("runs", "cancel", "x1"), ("flows", "show", "nope")):
        missing = flowtide(app_dir, *args)
        assert missing.code != 0 and "unknown" in missing.error_line, args


def test_unknown_config_key_is_one_line_naming_it(app_dir: Path) -> None:
    (app_dir / "flowtide.toml").write_text('backend = "sqlite:///x.db"\n[worker]\nconcurency = 2\n')
    result = flowtide(app_dir, "runs", "list")
    assert result.code != 0
    assert "worker.concurency" in result.error_line
    worker = flowtide(app_dir, "worker")  # a long-running command fails at start-up the same way
    assert worker.code != 0 and "worker.concurency" in worker.error_line


@pytest.mark.parametrize(
    ("url", "expected"),
    [("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"), ("nosuch://x", "unknown scheme")],
)
def test_unreachable_or_unknown_backend_is_one_line(app_dir: Path, url: str, expected: str) -> None:
    for args in (("runs", "list"), ("start", "demo"), ("worker",)):
        result = flowtide(app_dir, *args, "--backend", url)
        assert result.code != 0, args
        assert expected in result.error_line, args


def test_definition_error_names_file_flow_and_step(tmp_path: Path) -> None:
    root = write_app(tmp_path, BROKEN_MODULE)
    for args in (("flows", "list"), ("start", "bad"), ("worker",)):
        result = flowtide(root, *args)
        assert result.code != 0, args
        line = result.error_line
        assert "flows.py" in line and "flow 'bad'" in line and "step 'second'" in line, line
    # reading stored runs does not need the definitions
    assert flowtide(root, "runs", "list", "--json").json()["items"] == []


def test_app_option_points_at_another_directory(tmp_path: Path) -> None:
    write_app(tmp_path / "project")
    (tmp_path / "flowtide.toml").write_text('backend = "sqlite:///elsewhere.db"\n')
    result = flowtide(tmp_path, "flows", "list", "--json", "--app", "project/functions")
    assert result.code == 0, result.err
    assert "demo" in {f["name"] for f in result.json()["items"]}


def test_serve_on_a_taken_port_is_one_line(app_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = flowtide(app_dir, "serve", "--port", str(port))
    assert result.code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.error_line
