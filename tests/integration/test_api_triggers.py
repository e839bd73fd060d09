"""``/api/triggers`` and ``/api/schedules`` through the ASGI app, on the memory and SQLite
backends: the registry (code and API triggers), firing, pause/resume, fire history, replays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration._triggers_harness import BACKENDS, Harness, assert_error, harness


@pytest.fixture(params=BACKENDS)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(request.param, tmp_path) as opened:
        yield opened


async def test_routes_are_documented(h: Harness) -> None:
    paths = (await h.client.get("/api/openapi.json")).json()["paths"]
    for path in (
        "/api/triggers",
        "/api/triggers/{name}",
        "/api/triggers/{name}/fire",
        "/api/triggers/{name}/fires",
        "/api/triggers/{name}/fires/{fire_id}/replay",
        "/api/schedules",
        "/api/awaits",
        "/api/awaits/{await_id}/resolve",
        "/hooks/{trigger}",
        "/hooks/await/{token}",
    ):
        assert path in paths, path


async def test_list_code_triggers(h: Harness) -> None:
    r = await h.client.get("/api/triggers")
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    by_name = {t["name"]: t for t in body["items"]}
    assert {"orders-in", "orders.manual", "order.placed", "nightly.schedule"} <= set(by_name)
    webhook = by_name["orders-in"]
    assert webhook["type"] == "webhook" and webhook["status"] == "active"
    assert webhook["source"] == "code"
    assert webhook["subscriptions"] == {"orders": {"mode": "auto"}, "audit": {"mode": "manual"}}
    assert webhook["url"] == "http://hooks.test/hooks/orders-in"
    assert webhook["stats"] == {
        "fires": 0,
        "runs_started": 0,
        "failures": 0,
        "skipped": 0,
        "last_fire_at": None,
    }
    assert "code_hash" not in webhook and "def_hash" not in webhook
    schedule = by_name["nightly.schedule"]
    assert schedule["options"]["cron"] == "0 3 * * *" and schedule["next_at"].endswith("Z")
    assert schedule["last_at"] is None


async def test_show_includes_schema_subscriptions_status_and_stats(h: Harness) -> None:
    r = await h.client.get("/api/triggers/orders-in")
    assert r.status_code == 200
    doc = r.json()
    schema = doc["schema"]
    assert schema["type"] == "object" and schema["required"] == ["id"]
    assert set(schema["properties"]) == {"id", "item"}
    assert doc["options"]["method"] == "POST"
    assert doc["subscriptions"]["orders"] == {"mode": "auto"}
    assert doc["status"] == "active" and doc["stats"]["fires"] == 0
    assert_error(await h.client.get("/api/triggers/nope"), 404, "not_found")


async def test_fire_starts_auto_subscribers_and_records_the_fire(h: Harness) -> None:
    r = await h.client.post("/api/triggers/orders-in/fire", json={"id": 5})
    assert r.status_code == 202, r.text
    fire = r.json()
    assert fire["fire_id"] and len(fire["run_ids"]) == 1
    assert fire["runs"] == {"orders": fire["run_ids"][0]}
    assert fire["skipped"] == [{"flow": "audit", "reason": "manual subscription"}]
    view = await h.app.wait(fire["run_ids"][0], timeout=10)
    assert view["status"] == "completed" and view["result"] == {"accepted": 5}
    assert view["trigger"]["name"] == "orders-in" and view["trigger"]["fire_id"] == fire["fire_id"]

    stats = (await h.client.get("/api/triggers/orders-in")).json()["stats"]
    assert stats["fires"] == 1 and stats["runs_started"] == 1
    assert stats["last_fire_at"].endswith("Z")


async def test_fire_errors(h: Harness) -> None:
    assert_error(await h.client.post("/api/triggers/nope/fire", json={}), 404, "not_found")
    r = await h.client.post("/api/triggers/orders-in/fire", json={"id": "x"})
    error = assert_error(r, 422, "invalid_input")
    assert error["errors"][0]["loc"] == ["id"]
    r = await h.client.post(
        "/api/triggers/orders-in/fire",
        content=b'{"id": ',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "invalid_json")
    assert await h.fires("orders-in") == []


async def test_pause_resume(h: Harness) -> None:
    r = await h.client.post("/api/triggers/orders.manual/pause")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    r = await h.client.post("/api/triggers/orders.manual/fire", json={"id": 1})
    assert_error(r, 409, "paused")
    assert (await h.client.get("/api/triggers/orders.manual")).json()["status"] == "paused"
    r = await h.client.post("/api/triggers/orders.manual/resume")
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = await h.client.post("/api/triggers/orders.manual/fire", json={"id": 1})
    assert r.status_code == 202, r.text
    assert_error(await h.client.post("/api/triggers/nope/pause"), 404, "not_found")
    assert_error(await h.client.post("/api/triggers/nope/resume"), 404, "not_found")


async def test_fires_newest_first_with_cursor_and_replay(h: Harness) -> None:
    fire_ids = []
    for n in range(5):
        r = await h.client.post("/api/triggers/orders.manual/fire", json={"id": n})
        assert r.status_code == 202
        fire_ids.append(r.json()["fire_id"])

    r = await h.client.get("/api/triggers/orders.manual/fires", params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert [f["fire_id"] for f in page["items"]] == fire_ids[::-1][:2]
    assert page["items"][0]["payload"] == {"id": 4} and page["items"][0]["source"] == "api"
    seen = [f["fire_id"] for f in page["items"]]
    cursor = page["next_cursor"]
    while cursor:
        r = await h.client.get(
            "/api/triggers/orders.manual/fires", params={"limit": 2, "cursor": cursor}
        )
        seen += [f["fire_id"] for f in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    assert seen == fire_ids[::-1]
    assert_error(await h.client.get("/api/triggers/nope/fires"), 404, "not_found")
    r = await h.client.get("/api/triggers/orders.manual/fires", params={"limit": 0})
    assert_error(r, 422, "validation_error")

    r = await h.client.post(f"/api/triggers/orders.manual/fires/{fire_ids[1]}/replay")
    assert r.status_code == 202, r.text
    replay = r.json()
    assert replay["fire_id"] not in fire_ids and replay["replay_of"] == fire_ids[1]
    assert replay["source"] == "replay" and replay["payload"] == {"id": 1}
    view = await h.app.wait(replay["run_ids"][0], timeout=10)
    assert view["result"] == {"accepted": 1}
    newest = (await h.client.get("/api/triggers/orders.manual/fires")).json()["items"][0]
    assert newest["fire_id"] == replay["fire_id"]

    r = await h.client.post("/api/triggers/orders.manual/fires/no-such-fire/replay")
    assert_error(r, 404, "not_found")


async def test_create_update_delete_an_api_trigger(h: Harness) -> None:
    definition = {
        "name": "partner-orders",
        "type": "webhook",
        "description": "orders from a partner",
        "options": {"method": "put", "rate_limit": "10/minute"},
        "schema": {
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "required": ["id"],
        },
        "subscriptions": {"orders": {"mode": "auto"}},
    }
    r = await h.client.post("/api/triggers", json=definition)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["source"] == "api" and doc["options"]["method"] == "PUT"
    assert doc["url"] == "http://hooks.test/hooks/partner-orders"
    assert_error(await h.client.post("/api/triggers", json=definition), 409, "conflict")

    r = await h.client.put("/hooks/partner-orders", json={"id": 9})
    assert r.status_code == 202, r.text
    assert (await h.app.wait(r.json()["run_ids"][0], timeout=10))["result"] == {"accepted": 9}
    r = await h.client.put("/hooks/partner-orders", json={"id": "nine"})
    assert_error(r, 422, "invalid_input")

    r = await h.client.patch(
        "/api/triggers/partner-orders",
        json={"description": "renamed", "options": {"method": "POST"}},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["description"] == "renamed" and doc["options"]["method"] == "POST"
    assert doc["options"]["rate_limit"] == "10/minute"  # options are merged
    r = await h.client.patch("/api/triggers/partner-orders", json={"options": {"rate_limit": "x"}})
    assert_error(r, 400, "invalid_trigger")
    r = await h.client.patch("/api/triggers/nope", json={"description": "x"})
    assert_error(r, 404, "not_found")

    r = await h.client.delete("/api/triggers/partner-orders")
    assert r.status_code == 200 and r.json() == {"name": "partner-orders", "deleted": True}
    assert_error(await h.client.get("/api/triggers/partner-orders"), 404, "not_found")
    assert_error(await h.client.delete("/api/triggers/partner-orders"), 404, "not_found")
    assert_error(await h.client.post("/hooks/partner-orders", json={"id": 1}), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "type": "carrier-pigeon"},
        {"type": "webhook"},
        {"name": "a/b", "type": "manual"},
        {"name": "s", "type": "schedule", "options": {"cron": "not a cron"}},
        {"name": "s", "type": "schedule", "options": {}},
        {"name": "w", "type": "webhook", "options": {"rate_limit": "lots"}},
        {"name": "m", "type": "manual", "subscriptions": {"orders": {"mode": "sometimes"}}},
    ],
)
async def test_create_invalid_definitions_are_400(h: Harness, body: dict[str, object]) -> None:
    assert_error(await h.client.post("/api/triggers", json=body), 400, "invalid_trigger")


async def test_create_body_must_be_an_object(h: Harness) -> None:
    assert_error(await h.client.post("/api/triggers", json=[1, 2]), 422, "validation_error")


async def test_schedules(h: Harness) -> None:
    r = await h.client.get("/api/schedules")
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    (item,) = [s for s in body["items"] if s["name"] == "nightly.schedule"]
    assert item["cron"] == "0 3 * * *" and item["tz"] == "Europe/Berlin"
    assert item["flows"] == ["nightly"] and item["status"] == "active"
    assert item["next_at"].endswith("Z") and item["last_at"] is None
    assert item["stats"]["fires"] == 0

    await h.client.post("/api/triggers/nightly.schedule/pause")
    (item,) = [
        s
        for s in (await h.client.get("/api/schedules")).json()["items"]
        if s["name"] == item["name"]
    ]
    assert item["status"] == "paused" and item["next_at"] is None


async def test_bearer_token_guards_the_api_but_not_the_hooks(tmp_path: Path) -> None:
    async with harness("memory", tmp_path, token="s3cret") as h:
        for method, path in (
            ("GET", "/api/triggers"),
            ("POST", "/api/triggers/orders.manual/fire"),
            ("GET", "/api/schedules"),
            ("GET", "/api/awaits"),
            ("POST", "/api/awaits/x/resolve"),
        ):
            assert_error(await h.client.request(method, path), 401, "unauthorized")
        auth = {"Authorization": "Bearer s3cret"}
        assert (await h.client.get("/api/triggers", headers=auth)).status_code == 200
        r = await h.client.post("/hooks/orders-in", json={"id": 3})
        assert r.status_code == 202, r.text
