"""The API token (asked once, kept for the browser session) and accessibility basics:
keyboard navigation, labelled controls and text contrast in both themes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests._processes import ProcessGroup
from tests.e2e.conftest import Server, start_dev

TOKEN = "e2e-s3cret-token"

# an arrow function, without the file's leading comment lines
CONTRAST_JS = "\n".join(
    line
    for line in (Path(__file__).parent / "contrast.js").read_text().splitlines()
    if not line.startswith("//")
)

UNLABELLED_JS = """
() => [...document.querySelectorAll("input, select, textarea, button, [role=button], a[href]")]
  .filter((el) => el.getClientRects().length && !el.closest("dialog:not([open])"))
  .filter((el) => {
    const labelled = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby") || (el.textContent || "").trim();
    return !labelled;
  })
  .map((el) => el.outerHTML.slice(0, 80))
"""


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e-token")
    group = ProcessGroup(root, {"PYTHONUNBUFFERED": "1"})
    try:
        server = start_dev(root, group, ("[server]", f'api_token = "{TOKEN}"'))
        server.token = TOKEN
        yield server
    finally:
        group.stop_all()


def test_token_is_asked_once_per_browser_session(
    page: Page, browser: Browser, token_server: Server
) -> None:
    run_id = token_server.start("tiny")
    token_server.wait_run(run_id)
    page.goto(token_server.url + "/runs")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("main")).to_contain_text("requires an API token")
    expect(page.locator("#runs")).to_have_count(0)  # without the token nothing is shown
    assert run_id not in page.content()
    page.fill("#token-input", TOKEN)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#runs tr[data-run='{run_id}']")).to_be_visible()
    page.goto(f"{token_server.url}/runs/{run_id}")  # kept for the session: no second prompt
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    expect(dialog).to_be_hidden()
    expect(page.locator("#live")).to_have_text("")  # a finished run needs no stream
    page.goto(
        token_server.url + "/"
    )  # the live stream sends the token too (fetch, not EventSource)
    expect(page.locator("#live")).to_have_text("Live")
    page.click("#forget-token")
    expect(dialog).to_be_visible()

    other = browser.new_context()  # another browser session asks again
    try:
        fresh = other.new_page()
        fresh.goto(token_server.url + "/queues")
        expect(fresh.locator("#token-dialog")).to_be_visible()
    finally:
        other.close()


PAGES = [
    "/",
    "/flows",
    "/flows/orders",
    "/runs",
    "/queues",
    "/queues/emails",
    "/triggers",
    "/triggers/refunds.manual",
    "/triggers/user.signed_up",
    "/schedules",
    "/approvals",
]


def test_keyboard_labels_and_contrast(page: Page, server: Server) -> None:
    run_id = server.start("orders", {"id": 5})
    server.wait_run(run_id)
    server.start("expenses", {"amount": 1})  # a pending approval on /approvals
    server.call("POST", "/api/triggers/user.signed_up/fire", {"name": "a11y"})  # a fire
    page.goto(server.url + "/")
    expect(page.locator("#flow-counts")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.locator("a.skip").focus()
    for _ in range(3):
        page.keyboard.press("Tab")
    expect(page.locator("nav a", has_text="Flows")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Flows")

    page.evaluate(
        "document.querySelector('main').append(Object.assign(document.createElement('p'),"
        " {textContent: 'faint', style: 'color: #ccc'}))"
    )
    assert any("faint" in item for item in page.evaluate(CONTRAST_JS))  # the check works
    for path in [*PAGES, f"/runs/{run_id}"]:
        page.goto(server.url + path)
        expect(page.locator("body[data-ready]")).to_be_attached()
        assert page.evaluate(UNLABELLED_JS) == [], path
        for theme in ("light", "dark"):
            page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
            assert page.evaluate(CONTRAST_JS) == [], (path, theme)


def test_theme_switch_is_remembered(page: Page, server: Server, tmp_path: Path) -> None:
    page.goto(server.url + "/flows")
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "light")
    page.click("#theme")
    expect(html).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.locator("#theme")).to_have_text("Light theme")
