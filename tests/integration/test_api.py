"""The HTTP API (DESIGN A8) against a real App and worker, on the memory and SQLite backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_api_support import Api, api_harness, parse_sse

from flowtide import App
from flowtide.server import create_app


@pytest.fixture(params=["memory", "sqlite"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with api_harness(request.param, tmp_path) as harness:
        yield harness


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


# -- documentation and routing ------------------------------------------------------------------
async def test_openapi_and_docs(api: Api) -> None:
    r = await api.client.get("/api/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/flows", "/api/runs", "/api/runs/{run_id}/stream", "/api/jobs"):
        assert path in paths
    r = await api.client.get("/api/docs")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "cdn" not in r.text.lower()  # the docs work offline: assets come from the package
    js = await api.client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


async def test_unknown_routes_and_methods(api: Api) -> None:
    assert_error(await api.client.get("/api/nothing-here"), 404, "not_found")
    assert_error(await api.client.get("/no/such/page"), 404, "not_found")
    assert_error(await api.client.delete("/api/runs"), 405, "method_not_allowed")


# -- flows ------------------------------------------------------------------------------------
async def test_flows_list_and_detail(api: Api) -> None:
    run_id = await api.start("orders", {"id": 1})
    await api.wait_run(run_id)

    r = await api.client.get("/api/flows")
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    flows = {f["name"]: f for f in body["items"]}
    assert set(flows) == {"orders", "gated"}
    orders = flows["orders"]
    assert [s["name"] for s in orders["steps"]] == ["accept", "ship"]
    assert orders["edges"] == [{"from": "accept", "to": "ship", "token": "order.accepted"}]
    assert orders["triggers"][0]["type"] == "manual"
    assert orders["stats"]["by_status"]["completed"] == 1
    assert orders["stats"]["runs"] == 1 and orders["stats"]["complete"] is True
    assert flows["gated"]["stats"]["runs"] == 0

    r = await api.client.get("/api/flows/orders")
    assert r.status_code == 200
    detail = r.json()
    assert detail["levels"] == [["accept"], ["ship"]]
    assert detail["entry"] == "accept" and "awaits" in detail
    assert detail["stats"]["last_started_at"].endswith("Z")

    assert_error(await api.client.get("/api/flows/nope"), 404, "not_found")


# -- runs ---------------------------------------------------------------------------------------
async def test_start_run_and_view(api: Api) -> None:
    r = await api.client.post("/api/flows/orders/runs", json={"input": {"id": 7}})
    assert r.status_code == 201
    run_id = r.json()["run_id"]
    await api.wait_run(run_id)

    r = await api.client.get(f"/api/runs/{run_id}")
    assert r.status_code == 200
    view = r.json()
    assert view["run_id"] == run_id and view["flow"] == "orders"
    assert view["status"] == "completed"
    assert view["input"] == {"id": 7}
    assert view["result"] == {"shipped": 7}
    assert view["steps"]["accept"]["status"] == "completed"
    assert view["steps"]["ship"]["result"] == {"shipped": 7}
    assert view["started_at"].endswith("Z") and view["completed_at"].endswith("Z")
    assert view["awaits"] == [] and view["error"] is None

    assert_error(await api.client.get("/api/runs/no-such-run"), 404, "not_found")


async def test_start_run_errors(api: Api) -> None:
    client = api.client
    r = await client.post("/api/flows/nope/runs", json={"input": {"id": 1}})
    assert_error(r, 404, "not_found")

    r = await client.post("/api/flows/orders/runs", json={"input": {"id": "not a number"}})
    error = assert_error(r, 422, "invalid_input")
    assert error["errors"][0]["loc"] == ["id"]
    assert error["errors"][0]["type"] == "int_parsing"

    r = await client.post("/api/flows/orders/runs", json={"input": {"item": "pen"}})
    error = assert_error(r, 422, "invalid_input")
    assert error["errors"] == [{"loc": ["id"], "msg": "Field required", "type": "missing"}]

    r = await client.post("/api/flows/orders/runs", json={"id": 1})  # input not wrapped
    error = assert_error(r, 422, "validation_error")
    assert error["errors"][0]["loc"] == ["body", "id"]

    r = await client.post(
        "/api/flows/orders/runs",
        content=b'{"input": {"id": 1}',
        headers={"content-type": "application/json"},
    )
    error = assert_error(r, 400, "invalid_json")
    assert "errors" not in error

    r = await client.get("/api/runs")
    assert r.json()["items"] == []  # nothing was started by the failed attempts


async def test_list_runs_pagination_and_filters(api: Api) -> None:
    started = [await api.start("orders", {"id": i}) for i in range(5)]
    for run_id in started:
        await api.wait_run(run_id)
    gated = await api.start("gated", None)

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get("/api/runs", params=params)
        assert r.status_code == 200
        body = r.json()
        assert len(body["items"]) <= 2
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [item["run_id"] for item in seen] == [gated, *reversed(started)]  # newest first
    first = seen[-1]
    assert set(first) == {"run_id", "flow", "status", "started_at", "completed_at", "trigger"}
    assert first["status"] == "completed" and first["completed_at"].endswith("Z")

    r = await api.client.get("/api/runs", params={"flow": "gated"})
    assert [item["run_id"] for item in r.json()["items"]] == [gated]
    r = await api.client.get("/api/runs", params={"status": "completed", "flow": "orders"})
    assert len(r.json()["items"]) == 5
    r = await api.client.get("/api/runs", params={"status": "running"})
    assert [item["run_id"] for item in r.json()["items"]] == [gated]

    assert_error(await api.client.get("/api/runs", params={"status": "bogus"}), 422)
    assert_error(await api.client.get("/api/runs", params={"limit": 0}), 422)
    assert_error(await api.client.get("/api/runs", params={"limit": "ten"}), 422)


async def test_run_events_pagination(api: Api) -> None:
    run_id = await api.start("orders", {"id": 3})
    await api.wait_run(run_id)
    r = await api.client.get(f"/api/runs/{run_id}/events")
    assert r.status_code == 200
    everything = r.json()["items"]
    assert r.json()["next_cursor"] is None
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["type"] == "flow.started"
    assert everything[-1]["type"] == "flow.completed"
    assert all(e["ts"].endswith("Z") for e in everything)

    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = (await api.client.get(f"/api/runs/{run_id}/events", params=params)).json()
        paged.extend(body["items"])
        if body["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": body["next_cursor"]}
    assert paged == everything

    r = await api.client.get(f"/api/runs/{run_id}/events", params={"after": 2, "limit": 2})
    assert [e["seq"] for e in r.json()["items"]] == [3, 4]

    assert_error(await api.client.get("/api/runs/nope/events"), 404, "not_found")
    assert_error(await api.client.get(f"/api/runs/{run_id}/events", params={"after": -1}), 422)
    bad = await api.client.get(f"/api/runs/{run_id}/events", params={"cursor": "x"})
    assert_error(bad, 400, "invalid_cursor")


async def test_run_stream_of_a_finished_run(api: Api) -> None:
    """A finished run's stream is its history and ends after the terminal event."""
    run_id = await api.start("orders", {"id": 4})
    await api.wait_run(run_id)
    events = (await api.client.get(f"/api/runs/{run_id}/events")).json()["items"]

    r = await api.client.get(f"/api/runs/{run_id}/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    messages = parse_sse(r.text)
    assert [m.id for m in messages] == [str(e["seq"]) for e in events]
    assert [m.event for m in messages] == [e["type"] for e in events]
    assert [m.json() for m in messages] == events

    r = await api.client.get(f"/api/runs/{run_id}/stream", headers={"Last-Event-ID": "2"})
    assert [m.id for m in parse_sse(r.text)] == [str(e["seq"]) for e in events[2:]]
    r = await api.client.get(f"/api/runs/{run_id}/stream", params={"after": len(events)})
    assert parse_sse(r.text) == []

    assert_error(await api.client.get("/api/runs/nope/stream"), 404, "not_found")
    bad = await api.client.get(f"/api/runs/{run_id}/stream", headers={"Last-Event-ID": "abc"})
    assert_error(bad, 400, "invalid_cursor")


async def test_state_at(api: Api) -> None:
    run_id = await api.start("orders", {"id": 5, "item": "lamp"})
    await api.wait_run(run_id)
    r = await api.client.get(f"/api/runs/{run_id}/state")
    assert r.status_code == 200
    now = r.json()
    assert now["state"] == {"order": {"id": 5, "item": "lamp"}}
    events = (await api.client.get(f"/api/runs/{run_id}/events")).json()["items"]
    assert now["at"] == events[-1]["seq"]
    state_seq = next(e["seq"] for e in events if e["type"] == "state")

    r = await api.client.get(f"/api/runs/{run_id}/state", params={"at": state_seq - 1})
    assert r.json() == {"at": state_seq - 1, "state": {}}
    r = await api.client.get(f"/api/runs/{run_id}/state", params={"at": state_seq})
    assert r.json()["state"] == {"order": {"id": 5, "item": "lamp"}}

    assert_error(await api.client.get("/api/runs/nope/state"), 404, "not_found")
    assert_error(await api.client.get(f"/api/runs/{run_id}/state", params={"at": "x"}), 422)


async def test_cancel(api: Api) -> None:
    run_id = await api.start("gated", None)
    await api.wait_status(run_id, "running")
    r = await api.client.post(f"/api/runs/{run_id}/cancel")
    assert r.status_code == 200
    assert r.json() == {"run_id": run_id, "status": "canceled"}
    view = (await api.client.get(f"/api/runs/{run_id}")).json()
    assert view["status"] == "canceled"

    assert_error(await api.client.post(f"/api/runs/{run_id}/cancel"), 409, "conflict")
    assert_error(await api.client.post("/api/runs/nope/cancel"), 404, "not_found")

    done = await api.start("orders", {"id": 1})
    await api.wait_run(done)
    assert_error(await api.client.post(f"/api/runs/{done}/cancel"), 409, "conflict")


async def test_restart(api: Api) -> None:
    run_id = await api.start("orders", {"id": 9})
    await api.wait_run(run_id)
    r = await api.client.post(f"/api/runs/{run_id}/restart")
    assert r.status_code == 201
    new_id = r.json()["run_id"]
    assert new_id != run_id
    view = await api.wait_run(new_id)
    assert view["status"] == "completed" and view["input"] == {"id": 9}

    running = await api.start("gated", {"x": 1})
    r = await api.client.post(f"/api/runs/{running}/restart")
    assert r.status_code == 201
    assert (await api.client.get(f"/api/runs/{running}")).json()["status"] == "canceled"

    assert_error(await api.client.post("/api/runs/nope/restart"), 404, "not_found")


# -- queues -------------------------------------------------------------------------------------
async def test_queues_overview_pause_and_resume(api: Api) -> None:
    r = await api.client.get("/api/queues")
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    queues = {q["name"]: q for q in body["items"]}
    assert set(queues) >= {"orders", "gated", "emails", "slow", "idle"}  # known, even if empty
    zero = {"waiting": 0, "active": 0, "delayed": 0, "completed": 0, "failed": 0}
    assert queues["idle"]["paused"] is False
    assert {k: queues["idle"]["counts"][k] for k in zero} == zero

    r = await api.client.post("/api/queues/emails/pause")
    assert r.status_code == 200 and r.json() == {"name": "emails", "paused": True}
    job_id = await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": 1}})
    job_id = job_id.json()["job_id"]
    queues = {q["name"]: q for q in (await api.client.get("/api/queues")).json()["items"]}
    assert queues["emails"]["paused"] is True
    assert queues["emails"]["counts"]["waiting"] == 1
    job = (await api.client.get(f"/api/jobs/{job_id}")).json()
    assert job["state"] == "waiting"  # a paused queue's jobs are not claimed

    r = await api.client.post("/api/queues/emails/resume")
    assert r.status_code == 200 and r.json() == {"name": "emails", "paused": False}
    job = await api.wait_job(job_id, "completed")
    assert job["result"] == 2
    queues = {q["name"]: q for q in (await api.client.get("/api/queues")).json()["items"]}
    assert queues["emails"]["counts"]["completed"] == 1 and not queues["emails"]["paused"]

    assert_error(await api.client.post("/api/queues/nope/pause"), 404, "not_found")
    assert_error(await api.client.post("/api/queues/nope/resume"), 404, "not_found")


async def test_queue_jobs_pagination(api: Api) -> None:
    await api.client.post("/api/queues/emails/pause")
    ids = []
    for n in range(5):
        r = await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": n}})
        ids.append(r.json()["job_id"])

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        r = await api.client.get("/api/queues/emails/jobs", params=params)
        assert r.status_code == 200
        body = r.json()
        seen.extend(body["items"])
        pages += 1
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}
    assert pages == 3
    assert [j["job_id"] for j in seen] == list(reversed(ids))  # newest first
    job = seen[0]
    assert job["queue"] == "emails" and job["kind"] == "function" and job["name"] == "flaky"
    assert job["state"] == "waiting" and job["created_at"].endswith("Z")

    await api.client.post("/api/queues/emails/resume")
    for job_id in ids:
        await api.wait_job(job_id, "completed")
    r = await api.client.get("/api/queues/emails/jobs", params={"state": "completed"})
    assert len(r.json()["items"]) == 5
    r = await api.client.get("/api/queues/emails/jobs", params={"state": "waiting"})
    assert r.json()["items"] == []

    r = await api.client.get("/api/queues/orders/jobs")
    assert r.json()["items"] == []  # known queue, no jobs yet
    assert_error(await api.client.get("/api/queues/nope/jobs"), 404, "not_found")
    assert_error(await api.client.get("/api/queues/emails/jobs", params={"state": "x"}), 422)
    bad = await api.client.get("/api/queues/emails/jobs", params={"cursor": "zz"})
    assert_error(bad, 400, "invalid_cursor")


# -- jobs -----------------------------------------------------------------------------------------
async def test_enqueue(api: Api) -> None:
    r = await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": 21}})
    assert r.status_code == 201
    job = await api.wait_job(r.json()["job_id"], "completed")
    assert job["result"] == 42 and job["finished_at"].endswith("Z")

    await api.client.post("/api/queues/emails/pause")
    body = {"function": "flaky", "input": {"n": 1}, "key": "mail-1"}
    first = (await api.client.post("/api/jobs", json=body)).json()["job_id"]
    second = (await api.client.post("/api/jobs", json=body)).json()["job_id"]
    assert first == second  # the key deduplicates unfinished jobs

    r = await api.client.post(
        "/api/jobs", json={"function": "flaky", "input": {"n": 2}, "delay": "1h"}
    )
    assert r.status_code == 201
    job = (await api.client.get(f"/api/jobs/{r.json()['job_id']}")).json()
    assert job["state"] == "delayed"

    assert_error(await api.client.post("/api/jobs", json={"function": "nope"}), 404, "not_found")
    error = assert_error(
        await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": "x"}}),
        422,
        "invalid_input",
    )
    assert error["errors"][0]["loc"] == ["n"]
    error = assert_error(
        await api.client.post(
            "/api/jobs", json={"function": "flaky", "input": {"n": 1}, "delay": "soon"}
        ),
        422,
        "validation_error",
    )
    assert error["errors"][0]["loc"] == ["body", "delay"]
    error = assert_error(await api.client.post("/api/jobs", json={"input": {}}), 422)
    assert error["errors"][0]["loc"] == ["body", "function"]
    bad = await api.client.post(
        "/api/jobs", content=b"not json", headers={"content-type": "application/json"}
    )
    assert_error(bad, 400, "invalid_json")
    assert_error(await api.client.get("/api/jobs/nope"), 404, "not_found")


async def test_retry_job(api: Api) -> None:
    api.gates.fail_once.add(3)
    job_id = await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": 3}})
    job_id = job_id.json()["job_id"]
    job = await api.wait_job(job_id, "failed")
    assert "failed once" in job["error"]["message"]

    r = await api.client.post(f"/api/jobs/{job_id}/retry")
    assert r.status_code == 200
    assert r.json()["job_id"] == job_id
    job = await api.wait_job(job_id, "completed")
    assert job["result"] == 6

    assert_error(await api.client.post(f"/api/jobs/{job_id}/retry"), 409, "conflict")
    assert_error(await api.client.post("/api/jobs/nope/retry"), 404, "not_found")


async def test_delete_job(api: Api) -> None:
    done = await api.client.post("/api/jobs", json={"function": "flaky", "input": {"n": 1}})
    done_id = done.json()["job_id"]
    await api.wait_job(done_id, "completed")
    r = await api.client.delete(f"/api/jobs/{done_id}")
    assert r.status_code == 200 and r.json() == {"job_id": done_id, "deleted": True}
    assert_error(await api.client.get(f"/api/jobs/{done_id}"), 404)
    assert_error(await api.client.delete(f"/api/jobs/{done_id}"), 404, "not_found")

    active = (await api.client.post("/api/jobs", json={"function": "blocker"})).json()["job_id"]
    await api.wait_job(active, "active")
    assert_error(await api.client.delete(f"/api/jobs/{active}"), 409, "conflict")
    api.gates.block.set()
    await api.wait_job(active, "completed")
    assert (await api.client.delete(f"/api/jobs/{active}")).status_code == 200


# -- operations and pages ------------------------------------------------------------------------
async def test_health_ready_and_metrics(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"

    run_id = await api.start("orders", {"id": 1})
    await api.wait_run(run_id)
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'flowtide_runs{flow="orders",status="completed"} 1.0' in text
    assert 'flowtide_runs{flow="gated",status="running"} 0.0' in text
    assert 'flowtide_queue_jobs{queue="orders",state="completed"} 2.0' in text
    assert 'flowtide_queue_paused{queue="idle"} 0.0' in text


async def test_readyz_when_the_backend_is_gone(tmp_path: Path) -> None:
    app = App(make_sqlite_config(tmp_path))
    await app.open()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(app)), base_url="http://t"
    )
    try:
        assert (await client.get("/readyz")).status_code == 200
        await app.backend.close()  # the database connection is gone
        assert_error(await client.get("/readyz"), 503, "backend_unavailable")
        assert (await client.get("/healthz")).status_code == 200
        await app.close()
        assert_error(await client.get("/readyz"), 503, "unavailable")
        assert_error(await client.get("/api/runs"), 503, "unavailable")
    finally:
        await client.aclose()
        await app.close()


def make_sqlite_config(tmp_path: Path) -> Any:
    from test_api_support import make_config

    return make_config("sqlite", tmp_path)


async def test_dashboard_pages(api: Api) -> None:
    run_id = await api.start("orders", {"id": 1})
    await api.wait_run(run_id)
    for path in (
        "/",
        "/flows/orders",
        f"/runs/{run_id}",
        "/triggers",
        "/triggers/x",
        "/schedules",
        "/approvals",
        "/queues",
        "/queues/orders",
    ):
        r = await api.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "orders" in r.text and run_id in r.text
        assert "http://" not in r.text and "https://" not in r.text  # no CDN


# -- auth ---------------------------------------------------------------------------------------
async def test_bearer_token(tmp_path: Path) -> None:
    async with api_harness("memory", tmp_path, token="s3cret") as api:
        client = api.client
        for method, path in (
            ("GET", "/api/flows"),
            ("GET", "/api/runs"),
            ("POST", "/api/flows/orders/runs"),
            ("GET", "/api/queues"),
            ("POST", "/api/jobs"),
            ("GET", "/api/events/stream"),
            ("GET", "/api/triggers"),
        ):
            r = await client.request(method, path)
            assert_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer nope"}
        assert_error(await client.get("/api/runs", headers=wrong), 401)
        basic = {"Authorization": "Basic czNjcmV0"}
        assert_error(await client.get("/api/runs", headers=basic), 401)

        good = {"Authorization": "Bearer s3cret"}
        assert (await client.get("/api/runs", headers=good)).status_code == 200
        r = await client.post("/api/flows/orders/runs", json={"input": {"id": 1}}, headers=good)
        assert r.status_code == 201
        run_id = r.json()["run_id"]
        await api.wait_run(run_id)

        for path in ("/healthz", "/readyz", "/metrics", "/", "/api/openapi.json"):
            assert (await client.get(path)).status_code == 200, path
        page = (await client.get("/")).text
        assert "orders" in page and run_id not in page  # run data stays behind the token
