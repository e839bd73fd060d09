"""A run page keeps following its run across a dropped connection: the server goes away
mid-run and comes back on the same port; the page reconnects with Last-Event-ID and shows
the rest of the run, each event once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests._processes import ProcessGroup
from tests.e2e.conftest import Server, start_dev


# the browser itself logs the refused requests (streams, state reloads) while the server is away
@pytest.mark.allow_console(r"Failed to load resource: net::ERR_CONNECTION_REFUSED .*/api/")
def test_run_page_resumes_after_the_server_restarts(page: Page, tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path, {"PYTHONUNBUFFERED": "1"})
    try:
        server = start_dev(tmp_path, group)
        run_id = server.start("orders", {"id": 11, "gate": "gate-reconnect"})
        page.goto(f"{server.url}/runs/{run_id}")
        expect(page.locator("g.node[data-step='charge']")).to_have_attribute(
            "data-status", "running"
        )
        expect(page.locator("#live")).to_have_text("Live")
        first = group.procs[0]
        first.kill(15)  # SIGTERM: streams end, then the worker waits for `charge`
        expect(page.locator("#live")).to_have_text("Reconnecting…")
        server.release("gate-reconnect")
        assert first.popen.wait(30) == 0
        port = server.url.rsplit(":", 1)[1]
        second = group.start("dev", "--port", port)
        second.wait_for_output("worker ready", timeout=30)
        expect(page.locator("#run-status")).to_have_attribute(
            "data-status", "completed", timeout=20_000
        )
        expect(page.locator("#live")).not_to_have_text("Reconnecting…")
        seqs = page.locator("#timeline-rows tr").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.seq))"
        )
        assert seqs == list(range(1, len(seqs) + 1))  # nothing missed, nothing twice
        assert re.search("flow.completed", page.locator("#timeline-rows tr").last.inner_text())
        assert Server(server.url, tmp_path).wait_run(run_id)["status"] == "completed"
    finally:
        group.stop_all()
