"""End-to-end fixtures: a real ``flowtide dev`` child process and Debian's chromium driven by
Playwright for Python. Skipped only when /usr/bin/chromium is absent."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._processes import ProcessGroup, write_app
from tests.e2e._app import SOURCE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright  # noqa: E402


@dataclass
class Server:
    """A running ``flowtide dev``: its URL, its app directory, and a tiny API client."""

    url: str
    root: Path
    token: str = ""
    log: Path | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def start(self, flow: str, data: Any = None) -> str:
        run_id: str = self.call("POST", f"/api/flows/{flow}/runs", {"input": data})["run_id"]
        return run_id

    def wait_run(self, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view: dict[str, Any] = self.call("GET", f"/api/runs/{run_id}")
            if view["status"] not in ("running", "awaiting"):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {view['status']} after {timeout}s")
            time.sleep(0.05)

    def release(self, gate: str) -> None:
        (self.root / gate).touch()


def start_dev(root: Path, group: ProcessGroup, extra: tuple[str, ...] = ()) -> Server:
    write_app(root, SOURCE, f"sqlite:///{root / 'flowtide.db'}", extra)
    proc = group.start("dev", "--port", "0")
    proc.wait_for_output("flowtide dev: http://", timeout=30)
    match = re.search(r"flowtide dev: (http://\S+)", proc.output())
    assert match, proc.output()
    server = Server(match.group(1), root, log=proc.log)
    deadline = time.monotonic() + 20
    while "worker ready" not in proc.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e-app")
    group = ProcessGroup(root, {"PYTHONUNBUFFERED": "1"})
    try:
        yield start_dev(root, group)
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: while sync_playwright() is open an event loop runs in this
    # thread, which would break the asyncio tests that run after tests/e2e.
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_console(pattern): a console error the test provokes on purpose (a regex)",
    )


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context per test; fails the test on any console or page error
    (except those matching the test's ``allow_console`` markers)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(10_000)
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    try:
        yield page
    finally:
        context.close()
    allowed = [re.compile(m.args[0]) for m in request.node.iter_markers("allow_console")]
    errors = [e for e in console.errors if not any(p.search(e) for p in allowed)]
    assert errors == [], "\n".join(errors)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/images with UPDATE_SCREENSHOTS=1 (to update the committed
    ones, see `make screenshots`), a temporary directory otherwise."""
    if os.environ.get("UPDATE_SCREENSHOTS"):
        out = REPO / "docs" / "images"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


def snap(page: Page, shots: Path, name: str, *, dark: bool = True) -> None:
    """Screenshots of the current page in the light theme and, with ``dark``, the dark one
    (switched with the page's own theme button)."""

    def use(theme: str) -> None:
        if page.locator("html").get_attribute("data-theme") != theme:
            page.click("#theme")

    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    use("light")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    if dark:
        use("dark")
        page.screenshot(path=str(shots / f"{name}-dark.png"), full_page=True)
        use("light")


__all__ = ["CHROMIUM", "Server", "snap", "start_dev"]
