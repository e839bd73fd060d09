"""``/api/awaits`` and ``/hooks/await/{token}`` through the ASGI app with a worker, on the
memory and SQLite backends: listing, resolving (200, then 410), 404, 405, 422 and races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration._triggers_harness import BACKENDS, Harness, assert_error, harness


@pytest.fixture(params=BACKENDS)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(request.param, tmp_path) as opened:
        yield opened


def path_of(url: str) -> str:
    return urlsplit(url).path


async def test_list_pending_awaits(h: Harness) -> None:
    run_id = await h.app.start("approve", {"id": 1})
    item = await h.pending_await(run_id)
    assert set(item) >= {
        "await_id",
        "run_id",
        "flow",
        "step",
        "position",
        "type",
        "deadline",
        "url",
    }
    assert item["flow"] == "approve" and item["step"] == "ship" and item["position"] == "before"
    assert item["type"] == "webhook" and item["deadline"].endswith("Z")
    assert item["url"].startswith("http://hooks.test/hooks/await/")
    r = await h.client.get("/api/awaits")  # status defaults to pending
    assert r.status_code == 200 and r.json()["next_cursor"] is None
    assert_error(await h.client.get("/api/awaits", params={"status": "resolved"}), 422)

    view = (await h.client.get(f"/api/runs/{run_id}")).json()
    assert view["status"] == "awaiting"
    (shown,) = view["awaits"]
    assert shown["status"] == "pending" and shown["url"] == item["url"]


async def test_awaits_list_pages(h: Harness) -> None:
    run_ids = [await h.app.start("approve", {"id": n}) for n in range(3)]
    for run_id in run_ids:
        await h.pending_await(run_id)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await h.client.get("/api/awaits", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [a["run_id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(run_ids)


async def test_resolve_by_id_then_410(h: Harness) -> None:
    run_id = await h.app.start("approve", {"id": 4})
    item = await h.pending_await(run_id)
    path = f"/api/awaits/{item['await_id']}/resolve"
    r = await h.client.post(path, json={"data": {"approved": True}})
    assert r.status_code == 200, r.text
    assert r.json() == {"await_id": item["await_id"], "run_id": run_id, "status": "resolved"}
    view = await h.app.wait(run_id, timeout=10)
    assert view["status"] == "completed"
    assert view["result"] == {"order": {"id": 4}, "approval": {"approved": True}}
    assert_error(await h.client.post(path, json={"data": {"approved": False}}), 410, "gone")
    listed = (await h.client.get("/api/awaits")).json()["items"]
    assert all(a["run_id"] != run_id for a in listed)


async def test_resolve_errors(h: Harness) -> None:
    r = await h.client.post("/api/awaits/no-such-run:ship:before/resolve", json={"data": {}})
    assert_error(r, 404, "not_found")
    run_id = await h.app.start("approve", {"id": 5})
    item = await h.pending_await(run_id)
    path = f"/api/awaits/{item['await_id']}/resolve"
    r = await h.client.post(path, json={"data": {"approved": "perhaps"}})
    error = assert_error(r, 422, "invalid_input")
    assert error["errors"][0]["loc"] == ["approved"]
    r = await h.client.post(path, json={"approved": True})  # data not wrapped
    assert_error(r, 422, "validation_error")
    assert (await h.app.run(run_id))["status"] == "awaiting"  # still pending


async def test_resolve_by_token_then_410(h: Harness) -> None:
    run_id = await h.app.start("approve", {"id": 6})
    item = await h.pending_await(run_id)
    hook = path_of(item["url"])
    r = await h.client.post(hook, json={"approved": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"await_id": item["await_id"], "run_id": run_id, "status": "resolved"}
    view = await h.app.wait(run_id, timeout=10)
    assert view["result"]["approval"] == {"approved": True}
    assert_error(await h.client.post(hook, json={"approved": True}), 410, "gone")
    resolve = f"/api/awaits/{item['await_id']}/resolve"
    r = await h.client.post(resolve, json={"data": {"approved": False}})
    assert_error(r, 410, "gone")


async def test_token_errors(h: Harness) -> None:
    assert_error(await h.client.post("/hooks/await/not-a-token", json={}), 404, "not_found")
    run_id = await h.app.start("approve", {"id": 7})
    hook = path_of((await h.pending_await(run_id))["url"])
    for method in ("GET", "PUT", "DELETE"):
        r = await h.client.request(method, hook)
        assert_error(r, 405, "method_not_allowed")
        assert r.headers["Allow"] == "POST"
    r = await h.client.post(hook, json={"approved": "maybe"})
    assert_error(r, 422, "invalid_input")
    r = await h.client.post(hook, content=b"{", headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_json")
    assert (await h.app.run(run_id))["status"] == "awaiting"


async def test_get_await_takes_the_query_string(h: Harness) -> None:
    run_id = await h.app.start("poll", {"x": 1})
    hook = path_of((await h.pending_await(run_id))["url"])
    r = await h.client.post(hook, json={})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"
    r = await h.client.get(hook, params={"answer": "yes"})
    assert r.status_code == 200, r.text
    view = await h.app.wait(run_id, timeout=10)
    assert view["result"] == {"answer": "yes"}


@pytest.mark.parametrize("via", ["api", "token"])
async def test_concurrent_resolutions_one_wins(h: Harness, via: str) -> None:
    run_id = await h.app.start("approve", {"id": 8})
    item = await h.pending_await(run_id)
    if via == "api":
        path, body = f"/api/awaits/{item['await_id']}/resolve", {"data": {"approved": True}}
    else:
        path, body = path_of(item["url"]), {"approved": True}
    first, second = await asyncio.gather(
        h.client.post(path, json=body), h.client.post(path, json=body)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 410]
    loser = first if first.status_code == 410 else second
    assert_error(loser, 410, "gone")
    view = await h.app.wait(run_id, timeout=10)
    assert view["status"] == "completed"
    events = await h.app.backend.read_events(run_id)
    assert [e["type"] for e in events].count("await.resolved") == 1
