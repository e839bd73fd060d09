"""Triggers, schedules and approvals in Debian's chromium against a real ``flowtide dev``: a
manual trigger's generated form (checked in the browser before anything is sent) starts a run
that completes live; a fire is replayed; a schedule is paused and resumed; a pending webhook
await is approved and its run completes. No console errors (the ``page`` fixture)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, snap


def fires(server: Server, trigger: str, limit: int = 50) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = server.call(
        "GET", f"/api/triggers/{trigger}/fires?limit={limit}"
    )["items"]
    return items


def pending_await(server: Server, run_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for item in server.call("GET", "/api/awaits?status=pending&limit=500")["items"]:
            if item["run_id"] == run_id:
                found: dict[str, Any] = item
                return found
        assert time.monotonic() < deadline, f"run {run_id} registered no await"
        time.sleep(0.05)


def test_manual_trigger_form_starts_a_run_that_completes_live(
    page: Page, server: Server, shots: Path
) -> None:
    before = len(fires(server, "refunds.manual"))
    page.goto(server.url + "/triggers")
    row = page.locator("#triggers tr[data-trigger='refunds.manual']")
    expect(row).to_contain_text("manual")
    expect(row).to_contain_text("refunds")
    expect(row.locator("td.status")).to_have_text("active")
    row.locator("a", has_text="refunds.manual").click()
    expect(page).to_have_url(re.compile(r"/triggers/refunds\.manual$"))
    expect(page.locator("h1")).to_contain_text("refunds.manual")

    # the form comes from the trigger's JSON schema (a pydantic model with a nested one)
    expect(page.locator("#f-order_id")).to_have_attribute("type", "number")
    expect(page.locator("#f-amount")).to_have_attribute("aria-required", "true")
    expect(page.locator("#f-reason option")).to_have_text(["damaged", "late", "other"])
    expect(page.locator("#f-reason")).to_have_value("2")  # its default, "other"
    expect(page.locator("#f-express")).to_have_attribute("type", "checkbox")
    expect(page.locator("fieldset legend", has_text="Address")).to_be_visible()
    expect(page.locator("label[for='f-address-city']")).to_have_text("City *")
    expect(page.locator("#f-tags")).to_have_js_property("tagName", "TEXTAREA")

    # invalid values are reported in the browser, and nothing is sent
    page.fill("#f-order_id", "42")
    page.fill("#f-amount", "-5")
    page.fill("#f-tags", "gift")
    page.click("#fire")
    errors = page.locator(".form-errors")
    expect(errors).to_contain_text("nothing was sent")
    expect(page.locator("#f-amount-error")).to_have_text("must be greater than 0")
    expect(page.locator("#f-amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-address-city-error")).to_have_text("This field is required.")
    expect(page.locator("#f-tags-error")).to_contain_text("not valid JSON")
    expect(page.locator("#f-amount")).to_be_focused()  # the first field in error
    expect(page.locator("#fire-result")).to_be_empty()
    assert len(fires(server, "refunds.manual")) == before

    page.fill("#f-amount", "12.5")
    page.fill("#f-address-city", "Berlin")
    page.select_option("#f-reason", label="damaged")
    page.check("#f-express")
    page.fill("#f-tags", '["gift"]')
    page.click("#fire")
    result = page.locator("#fire-result")
    expect(result).to_contain_text("started 1 run")
    expect(errors).to_be_empty()
    expect(page.locator("#f-amount")).not_to_have_attribute("aria-invalid", "true")
    recorded = fires(server, "refunds.manual")
    assert len(recorded) == before + 1
    fire = recorded[0]
    assert fire["payload"] == {
        "order_id": 42,
        "amount": 12.5,
        "reason": "damaged",
        "express": True,
        "address": {"city": "Berlin"},
        "tags": ["gift"],
    }
    (run_id,) = fire["run_ids"]
    # the fire history shows it at once, newest first
    expect(page.locator("#fires tr").first).to_have_attribute("data-fire", fire["fire_id"])
    expect(page.locator("#trigger-stats [data-stat='fires'] .n")).to_have_text(str(before + 1))

    result.locator(f"a[data-run='{run_id}']").click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    status = page.locator("#run-status")
    expect(status).to_have_attribute("data-status", "running")
    expect(page.locator("g.node[data-step='pay_refund']")).to_have_attribute(
        "data-status", "running"
    )
    expect(page.locator("#run-summary")).to_contain_text('"reason": "damaged"')
    expect(page.locator("#run-summary")).to_contain_text("refunds.manual")  # the trigger
    server.release("gate-refund-42")
    expect(status).to_have_attribute("data-status", "completed")  # live, no reload
    expect(page.locator("g.node[data-step='pay_refund']")).to_have_attribute(
        "data-status", "completed"
    )

    page.goto(server.url + "/triggers/refunds.manual")
    expect(page.locator(f"#fires tr[data-fire='{fire['fire_id']}']")).to_contain_text("api")
    page.fill("#f-order_id", "43")
    page.fill("#f-amount", "0")
    page.fill("#f-address-city", "Hamburg")
    page.click("#fire")
    expect(page.locator("#f-amount-error")).to_have_text("must be greater than 0")
    expect(page.locator(".form-errors")).to_contain_text("Please correct one field")
    snap(page, shots, "trigger")


def test_replay_a_fire_from_the_history(page: Page, server: Server) -> None:
    first = server.call("POST", "/api/triggers/user.signed_up/fire", {"name": "ann"})
    for i in range(20):  # 20 fires per page: the first one is now on the second page
        server.call("POST", "/api/triggers/user.signed_up/fire", {"name": f"user {i}"})
    page.goto(server.url + "/triggers/user.signed_up")
    rows = page.locator("#fires tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#fires-newer")).to_be_disabled()
    newest = fires(server, "user.signed_up", 1)[0]
    expect(rows.first).to_have_attribute("data-fire", newest["fire_id"])
    expect(rows.first).to_contain_text("user 19")
    page.click("#fires-older")
    original = page.locator(f"#fires tr[data-fire='{first['fire_id']}']")
    expect(original).to_be_visible()
    expect(page.locator("#fires-page")).to_have_text("Page 2")
    original.locator("summary", has_text="payload").click()
    expect(original).to_contain_text('"name": "ann"')

    original.locator("button[data-action='replay']").click()
    expect(page.locator("#fire-result")).to_contain_text("Replayed fire")
    # back on the first page: the new fire on top, marked as a replay of the original
    replayed = rows.first
    expect(replayed).to_have_attribute("data-replay-of", first["fire_id"])
    expect(replayed).to_contain_text("replay")
    expect(replayed).to_contain_text(f"replay of …{first['fire_id'][-12:]}")
    expect(replayed).to_have_class(re.compile(r"\bnew\b"))
    latest = fires(server, "user.signed_up", 1)[0]
    assert latest["replay_of"] == first["fire_id"] and latest["source"] == "replay"
    assert latest["payload"] == {"name": "ann"}
    expect(replayed).to_have_attribute("data-fire", latest["fire_id"])
    (run_id,) = latest["run_ids"]
    expect(replayed.locator(f"a[data-run='{run_id}']")).to_be_visible()
    assert server.wait_run(run_id)["status"] == "completed"

    # an event trigger fires by hand with a JSON payload (no schema: anything goes)
    page.click("#fire-details summary")
    page.fill("#f-value", "{not json")
    page.click("#fire")
    expect(page.locator("#f-value-error")).to_contain_text("not valid JSON")
    page.fill("#f-value", '{"name": "cy"}')
    page.click("#fire")
    expect(page.locator("#fire-result")).to_contain_text("Fired: fire")
    expect(page.locator("#fire-result")).to_contain_text("started 1 run")
    latest = fires(server, "user.signed_up", 1)[0]
    assert latest["payload"] == {"name": "cy"} and latest["source"] == "api"
    expect(rows.first).to_have_attribute("data-fire", latest["fire_id"])


def test_triggers_list_filters_and_counts_live(page: Page, server: Server, shots: Path) -> None:
    page.goto(server.url + "/triggers")
    row = page.locator("#triggers tr[data-trigger='user.signed_up']")
    expect(row).to_contain_text("welcome")
    fired = row.locator("td[data-stat='fires']")
    expect(fired).not_to_have_text("")
    count = int(fired.inner_text())
    expect(page.locator("#live")).to_have_text("Live")
    server.call("POST", "/api/triggers/user.signed_up/fire", {"name": "bo"})
    expect(fired).to_have_text(str(count + 1))  # no reload
    expect(row.locator("td[data-stat='runs_started']")).to_have_text(
        str(server.call("GET", "/api/triggers/user.signed_up")["stats"]["runs_started"])
    )
    snap(page, shots, "triggers")
    page.select_option("#f-type", "schedule")
    expect(page).to_have_url(re.compile(r"\?type=schedule$"))
    expect(page.locator("#triggers tbody tr")).to_have_count(2)
    for kind in page.locator("#triggers tbody td .badge.kind").all_inner_texts():
        assert kind == "schedule"
    page.goto(server.url + "/triggers?type=manual")
    expect(page.locator("#triggers tbody tr")).to_have_count(1)
    expect(page.locator("#triggers tbody tr")).to_have_attribute("data-trigger", "refunds.manual")


def test_pause_and_resume_a_schedule(page: Page, server: Server, shots: Path) -> None:
    page.goto(server.url + "/schedules")
    row = page.locator("#schedules tr[data-schedule='cleanup.schedule']")
    expect(row).to_contain_text("every 1h")
    expect(row).to_contain_text("cleanup")
    expect(row.locator("td[data-col='next'] .rel")).to_have_text(re.compile(r"^\(in \d+m"))
    expect(row.locator("td.status")).to_have_text("active")
    cron = page.locator("#schedules tr[data-schedule='cleanup.weekdays']")
    expect(cron).to_contain_text("cron 0 9 * * 1-5 (Europe/Berlin)")
    expect(page.locator("#schedules-info")).to_contain_text("Next: cleanup.schedule")
    snap(page, shots, "schedules")

    row.locator("button[data-action='pause']").click()
    expect(row.locator("td.status")).to_have_text("paused")
    expect(row).to_have_attribute("data-status", "paused")
    expect(row.locator("td[data-col='next']")).to_have_text("— paused")
    doc = server.call("GET", "/api/triggers/cleanup.schedule")
    assert doc["status"] == "paused"
    expect(page.locator("#schedules-info")).to_contain_text("1 paused")

    row.locator("button[data-action='resume']").click()
    expect(row.locator("td.status")).to_have_text("active")
    expect(row.locator("td[data-col='next'] .rel")).to_have_text(re.compile(r"^\(in "))
    expect(row.locator("button[data-action='pause']")).to_be_visible()
    assert server.call("GET", "/api/triggers/cleanup.schedule")["status"] == "active"
    schedule = next(
        s for s in server.call("GET", "/api/schedules")["items"] if s["name"] == "cleanup.schedule"
    )
    assert schedule["next_at"] is not None
    # the trigger page shows the same schedule
    row.locator("a", has_text="cleanup.schedule").click()
    expect(page.locator("#trigger-details")).to_contain_text("every 1h")
    expect(page.locator("#trigger-status")).to_have_attribute("data-status", "active")


# the browser logs the 422 answer of the first, incomplete approval
@pytest.mark.allow_console(r"status of 422")
def test_approve_a_pending_webhook_await(page: Page, server: Server, shots: Path) -> None:
    run_id = server.start("expenses", {"amount": 120, "what": "train tickets"})
    waiting = pending_await(server, run_id)
    assert waiting["type"] == "webhook"
    page.goto(f"{server.url}/runs/{run_id}")  # the run page links to its approval
    expect(page.locator("#run-status")).to_have_attribute("data-status", "awaiting")
    page.click("#approve-link")
    expect(page.locator("#run-filter")).to_contain_text(run_id)
    expect(page.locator("#awaits article")).to_have_count(1)
    page.click("#run-filter a")
    expect(page).to_have_url(re.compile(r"/approvals$"))
    card = page.locator(f"article[data-run='{run_id}']")
    expect(card).to_contain_text("expenses")
    expect(card).to_contain_text("reimburse")
    expect(card).to_contain_text("webhook before")
    expect(card.locator(".left")).to_have_text(re.compile(r"^(59m( \d+s)?|1h) left$"))
    expect(card).to_contain_text("the step fails")  # on_timeout="fail", from the flow
    expect(card).to_contain_text("/hooks/await/")
    expect(page.locator("#approvals-stats [data-stat='pending'] .n")).not_to_have_text("0")

    # a run that starts waiting while the page is open appears without a reload
    expect(page.locator("#live")).to_have_text("Live")
    other = server.start("expenses", {"amount": 9, "what": "coffee"})
    pending_await(server, other)
    expect(page.locator(f"article[data-run='{other}']")).to_be_visible()
    snap(page, shots, "approvals")

    # the await declares a schema: the form is generated from it and checked before sending
    card.locator("button[data-action='approve']").click()
    expect(card).to_contain_text("This field is required.")
    assert server.call("GET", f"/api/runs/{run_id}")["status"] == "awaiting"
    card.locator("input[type='checkbox']").check()
    card.locator("input[name='by']").fill("ann")
    card.locator("button[data-action='approve']").click()
    approved = page.locator("#approved")
    expect(approved).to_contain_text("Approved step reimburse of expenses")
    expect(card).to_have_count(0)
    expect(page.locator(f"article[data-run='{other}']")).to_be_visible()

    approved.locator(f"a[data-run='{run_id}']").click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    expect(page.locator("#run-summary")).to_contain_text('"approved_by": "ann"')
    expect(page.locator("#run-summary")).to_contain_text("resolved")

    # the other one: approved through the API meanwhile, the page drops it on its own
    page.goto(server.url + "/approvals")
    expect(page.locator(f"article[data-run='{other}']")).to_be_visible()
    server.call(
        "POST",
        f"/api/awaits/{pending_await(server, other)['await_id']}/resolve",
        {"data": {"approved": False, "by": "bo"}},
    )
    expect(page.locator(f"article[data-run='{other}']")).to_have_count(0)
    assert server.wait_run(other)["status"] == "completed"
