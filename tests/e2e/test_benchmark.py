"""First-render benchmark: the runs list showing 1,000 runs and a run page with 5,000 events
render in under a second in the test browser (time from navigation start to the page's
``data-rendered-at`` mark, which it sets once the first render is complete)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from tests._processes import ProcessGroup
from tests.e2e.conftest import Server, start_dev

BUDGET_MS = 1000
RUNS = 1000
LOG_LINES = 4996  # + flow.started, step.started, step.completed, flow.completed = 5,000 events


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e-bench")
    group = ProcessGroup(root, {"PYTHONUNBUFFERED": "1"})
    try:
        yield start_dev(root, group)
    finally:
        group.stop_all()


def first_render_ms(page: Page, url: str) -> int:
    page.goto(url)
    expect(page.locator("body[data-ready]")).to_be_attached(timeout=20_000)
    return int(page.locator("main").get_attribute("data-rendered-at") or "0")


def test_first_render_of_1000_runs_and_5000_events(page: Page, bench_server: Server) -> None:
    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(lambda _: bench_server.start("tiny"), range(RUNS)))
    big = bench_server.start("chatty", {"lines": LOG_LINES})
    bench_server.wait_run(big, timeout=60)
    bench_server.wait_run(run_ids[-1], timeout=60)

    # the best of three loads (the first also warms the browser's cache), as benchmarks do:
    # the test machine may be busy with other suites
    runs_ms = min(
        first_render_ms(page, bench_server.url + "/runs?per=1000&flow=tiny") for _ in "123"
    )
    expect(page.locator("#runs tbody tr")).to_have_count(RUNS)

    run_ms = min(first_render_ms(page, f"{bench_server.url}/runs/{big}") for _ in "123")
    expect(page.locator("#timeline-rows tr")).to_have_count(LOG_LINES + 4)
    expect(page.locator("#timeline-count")).to_have_text("5000 of 5000 events")
    expect(page.locator("#logs .line")).to_have_count(LOG_LINES)

    print(
        f"\nfirst render: runs list with {RUNS} runs {runs_ms} ms; run with 5000 events {run_ms} ms"
    )
    assert runs_ms < BUDGET_MS, f"runs list: {runs_ms} ms"
    assert run_ms < BUDGET_MS, f"run page: {run_ms} ms"

    # still responsive afterwards: filtering the 5,000-event timeline is quick
    started = page.evaluate("performance.now()")
    page.select_option("#t-type", "lifecycle")
    expect(page.locator("#timeline-rows tr")).to_have_count(4)
    assert page.evaluate("performance.now()") - started < BUDGET_MS
