"""The dashboard in Debian's chromium against a real ``flowtide dev``: every screen, live
updates over SSE, time travel, cancel, retry; no console errors (the ``page`` fixture)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, snap


def wait_job_state(server: Server, queue: str, job_id: str, state: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        jobs = server.call("GET", f"/api/queues/{queue}/jobs?limit=500")["items"]
        if any(j["job_id"] == job_id and j["state"] == state for j in jobs):
            return
        assert time.monotonic() < deadline, f"job {job_id} never {state}: {jobs}"
        time.sleep(0.05)


def test_overview_counts_update_live(page: Page, server: Server, shots: Path) -> None:
    server.wait_run(server.start("broken"))
    page.goto(server.url + "/")
    row = page.locator("#flow-counts tr[data-flow='tiny']")
    expect(row).to_be_visible()
    before = int(row.locator("td[data-status='completed']").inner_text())
    expect(page.locator("#live")).to_have_text("Live")
    server.wait_run(server.start("tiny"))
    # no reload: the events stream updates the counts
    expect(row.locator("td[data-status='completed']")).to_have_text(str(before + 1))
    expect(page.locator("#queue-depths tr[data-queue='payments']")).to_be_visible()
    expect(page.locator("#throughput svg.chart rect.bar").first).to_be_visible()
    expect(page.locator("#throughput-total")).to_contain_text("completed")
    expect(page.locator("#failures")).to_contain_text("RuntimeError: boom")
    snap(page, shots, "overview")


def test_flow_graph_and_step_options(page: Page, server: Server, shots: Path) -> None:
    page.goto(server.url + "/flows")
    expect(page.locator("#flows tr[data-flow='orders']")).to_contain_text("4")
    page.click("#flows a[href='/flows/orders']")
    expect(page).to_have_url(re.compile(r"/flows/orders$"))
    nodes = page.locator("svg.graph g.node")
    expect(nodes).to_have_count(4)
    labels = page.locator("svg.graph .edge-label text").all_text_contents()
    assert sorted(labels) == sorted(
        ["order.accepted", "order.accepted", "order.charged", "stock.reserved"]
    )
    # laid out by level: accept left of charge and reserve, which are left of ship
    xs = {
        name: page.locator(f"g.node[data-step='{name}']").bounding_box()["x"]  # type: ignore[index]
        for name in ("accept", "charge", "reserve", "ship")
    }
    assert xs["accept"] < xs["charge"] == xs["reserve"] < xs["ship"]
    page.click("g.node[data-step='charge']")
    details = page.locator("#step-details")
    expect(details).to_contain_text("Step charge")
    expect(details).to_contain_text("payments")
    expect(details).to_contain_text("order.accepted")
    # keyboard: focus a step and press Enter
    page.locator("g.node[data-step='reserve']").focus()
    page.keyboard.press("Enter")
    expect(details).to_contain_text("Step reserve")
    snap(page, shots, "flow")


def test_start_a_run_and_watch_it_complete_live(page: Page, server: Server, shots: Path) -> None:
    page.goto(server.url + "/flows/orders")
    page.fill("#run-input", '{"id": 7, "gate": "gate-live"}')
    page.click("#start-run")
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+$"))
    status = page.locator("#run-status")
    expect(status).to_have_attribute("data-status", "running")
    expect(page.locator("g.node[data-step='charge']")).to_have_attribute("data-status", "running")
    expect(page.locator("g.node[data-step='accept']")).to_have_attribute("data-status", "completed")
    expect(page.locator("g.node[data-step='ship']")).to_have_attribute("data-status", "pending")
    expect(page.locator("#cancel")).to_be_enabled()
    server.release("gate-live")
    expect(status).to_have_attribute("data-status", "completed")
    for step in ("accept", "charge", "reserve", "ship"):
        expect(page.locator(f"g.node[data-step='{step}']")).to_have_attribute(
            "data-status", "completed"
        )
    expect(page.locator("#timeline-rows tr").last).to_contain_text("flow.completed")
    offsets = page.locator("#timeline-rows td:nth-child(3)").all_inner_texts()
    assert all(re.fullmatch(r"\d+(\.\d+)? m?s", text) for text in offsets), offsets
    expect(page.locator("#run-result")).to_contain_text("TRACK-1")
    expect(page.locator("#waterfall [data-step]")).to_have_count(4)
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#state")).to_contain_text('"shipped"')
    # logs: filter by level, by step, and search
    logs = page.locator("#logs .line")
    expect(logs).to_have_count(4)
    page.select_option("#l-level", "warning")
    expect(logs).to_have_count(1)
    expect(logs.first).to_contain_text("shipping by slow boat")
    page.select_option("#l-level", "")
    page.select_option("#l-step", "charge")
    expect(logs).to_have_count(1)
    expect(logs.first).to_contain_text("charging")
    page.select_option("#l-step", "")
    page.fill("#l-search", "reserving")
    expect(logs).to_have_count(1)
    # an event's data opens on click
    row = page.locator("#timeline-rows tr", has_text="emit").first
    row.click()
    expect(row).to_have_attribute("aria-expanded", "true")
    expect(row.locator("td.data")).to_contain_text('"name": "order.accepted"')
    page.fill("#l-search", "")
    expect(logs).to_have_count(4)
    snap(page, shots, "run")


def test_time_travel_state_slider(page: Page, server: Server) -> None:
    run_id = server.start("orders", {"id": 3})
    server.wait_run(run_id)
    events = server.call("GET", f"/api/runs/{run_id}/events")["items"]
    first_state = next(e["seq"] for e in events if e["type"] == "state")
    page.goto(f"{server.url}/runs/{run_id}")
    state = page.locator("#state")
    expect(state).to_contain_text('"stage": "shipped"')
    slider = page.locator("#state-at")
    expect(slider).to_have_attribute("max", str(events[-1]["seq"]))
    slider.focus()
    page.keyboard.press("Home")
    expect(page.locator("#state-at-label")).to_contain_text("before the first event")
    expect(state).to_have_text("{}")
    for _ in range(first_state):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#state-at-label")).to_contain_text(f"#{first_state} of")
    expect(state).to_contain_text('"stage": "accepted"')
    expect(state).not_to_contain_text("order")
    expect(page.locator(f"#timeline-rows tr[data-seq='{first_state}']")).to_have_class(
        re.compile(r"\bat\b")
    )
    page.keyboard.press("End")
    expect(state).to_contain_text('"stage": "shipped"')


def test_cancel_a_run(page: Page, server: Server) -> None:
    run_id = server.start("orders", {"id": 9, "gate": "gate-cancel"})
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.locator("g.node[data-step='charge']")).to_have_attribute("data-status", "running")
    page.click("#cancel")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "canceled")
    expect(page.locator("#run-status")).to_have_text("canceled")
    expect(page.locator("#timeline-rows tr").last).to_contain_text("flow.canceled")
    expect(page.locator("#cancel")).to_be_disabled()
    assert server.call("GET", f"/api/runs/{run_id}")["status"] == "canceled"
    server.release("gate-cancel")
    # restart: a new run with the same input
    page.click("#restart")
    expect(page).not_to_have_url(re.compile(run_id))
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")


def test_failed_run_page(page: Page, server: Server) -> None:
    run_id = server.start("broken")
    server.wait_run(run_id)
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "failed")
    expect(page.locator("#run-summary")).to_contain_text("RuntimeError: boom")
    page.click("g.node[data-step='explode']")
    expect(page.locator("#step-details")).to_contain_text("failed")
    # the run has ended, so its failed step cannot be retried: restart it instead
    expect(page.locator("#retry-step")).to_be_disabled()
    expect(page.locator("#step-details")).to_contain_text("restart it")


def test_queues_pause_resume_and_retry_a_failed_job(
    page: Page, server: Server, shots: Path
) -> None:
    job_id = server.call("POST", "/api/jobs", {"function": "send_email", "input": {"to": "a@b"}})[
        "job_id"
    ]
    wait_job_state(server, "emails", job_id, "failed")
    page.goto(server.url + "/queues")
    row = page.locator("#queues tr[data-queue='emails']")
    expect(row.locator("td[data-state='failed']")).not_to_have_text("0")
    row.locator("button[data-action='pause']").click()
    expect(row).to_contain_text("paused")
    assert server.call("GET", "/api/queues") and any(
        q["paused"] for q in server.call("GET", "/api/queues")["items"] if q["name"] == "emails"
    )
    snap(page, shots, "queues")
    row.locator("button[data-action='resume']").click()
    expect(row.locator("button[data-action='pause']")).to_be_visible()
    expect(row).not_to_contain_text("paused")

    row.locator("a", has_text="emails").click()
    page.click("[role=tab][data-state='failed']")
    job = page.locator(f"#jobs tr[data-job='{job_id}']")
    expect(job).to_contain_text("ConnectionError: smtp server unreachable")
    job.locator("summary", has_text="payload").click()
    expect(job).to_contain_text('"to": "a@b"')
    snap(page, shots, "queue")
    (server.root / "emails-ok").touch()
    job.locator("button[data-action='retry']").click()
    wait_job_state(server, "emails", job_id, "completed")
    page.click("[role=tab][data-state='completed']")
    expect(page.locator(f"#jobs tr[data-job='{job_id}']")).to_contain_text("completed")
    page.locator(f"#jobs tr[data-job='{job_id}'] button[data-action='delete']").click()
    expect(page.locator(f"#jobs tr[data-job='{job_id}']")).to_have_count(0)


def test_runs_list_filters_and_search(page: Page, server: Server, shots: Path) -> None:
    failed = server.start("broken")
    server.wait_run(failed)
    done = server.start("tiny")
    server.wait_run(done)
    page.goto(server.url + "/runs")
    rows = page.locator("#runs tbody tr")
    expect(rows.first).to_be_visible()
    page.select_option("#f-flow", "broken")
    expect(page).to_have_url(re.compile(r"flow=broken"))
    expect(page.locator(f"#runs tr[data-run='{failed}']")).to_be_visible()
    expect(page.locator(f"#runs tr[data-run='{done}']")).to_have_count(0)  # re-rendered
    for text in rows.locator("td:nth-child(2)").all_inner_texts():
        assert text == "broken"
    page.select_option("#f-status", "completed")
    expect(page.locator(".empty")).to_contain_text("No runs")
    page.select_option("#f-flow", "")
    page.select_option("#f-status", "")
    page.select_option("#f-range", "15m")
    expect(page.locator(f"#runs tr[data-run='{done}']")).to_be_visible()
    page.fill("#f-search", done[-12:])
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("tiny")
    page.fill("#f-search", "")
    expect(page.locator(f"#runs tr[data-run='{failed}']")).to_be_visible()
    # deep link with filters
    page.goto(server.url + "/runs?flow=tiny&status=completed")
    expect(page.locator("#f-flow")).to_have_value("tiny")
    expect(page.locator(f"#runs tr[data-run='{done}']")).to_be_visible()
    page.goto(server.url + "/runs")
    expect(rows.first).to_be_visible()
    snap(page, shots, "runs")
    page.locator(f"#runs tr[data-run='{done}'] a").first.click()
    expect(page).to_have_url(re.compile(done))
