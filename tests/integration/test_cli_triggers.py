"""``flowtide triggers ...`` and the awaits of ``flowtide runs show``, as real child processes
against one SQLite file; and a ``flowtide dev`` child taking webhooks while the CLI pauses."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_support import flowtide, spawn, wait_for, write_app

TRIGGER_APP = """
from typing import Any

from pydantic import BaseModel

from flowtide import Context, Flow, awaits, triggers


class OrderIn(BaseModel):
    id: int


orders = Flow("orders", description="orders from a webhook or by hand")


@orders.entry(triggers=[triggers.webhook("orders-in", schema=OrderIn), triggers.manual()])
async def accept(order: OrderIn, ctx: Context) -> dict:
    return {"accepted": order.id}


audit = Flow("audit")


@audit.entry(triggers=[triggers.webhook("orders-in", mode="manual")])
async def record(data: Any, ctx: Context) -> Any:
    return data


nightly = Flow("nightly")


@nightly.entry(triggers=[triggers.schedule("0 3 * * *", tz="Europe/Berlin")])
async def sweep(data: Any, ctx: Context) -> Any:
    return data


approve = Flow("approve")


@approve.entry(await_before=awaits.webhook(timeout="2h"))
async def ship(data: Any, ctx: Context) -> Any:
    return ctx.awaited
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(tmp_path, TRIGGER_APP)


def test_list_json_and_table(app_dir: Path) -> None:
    listed = flowtide(app_dir, "triggers", "list", "--json")
    assert listed.code == 0, listed.err
    body = listed.json()
    assert body["next_cursor"] is None
    by_name = {t["name"]: t for t in body["items"]}
    assert set(by_name) == {"orders-in", "orders.manual", "nightly.schedule"}
    webhook = by_name["orders-in"]
    assert webhook["type"] == "webhook" and webhook["status"] == "active"
    assert webhook["subscriptions"] == {"audit": {"mode": "manual"}, "orders": {"mode": "auto"}}
    assert webhook["stats"]["fires"] == 0 and webhook["url"].endswith("/hooks/orders-in")
    assert by_name["nightly.schedule"]["next_at"].endswith("Z")

    human = flowtide(app_dir, "triggers", "list")
    assert human.code == 0, human.err
    lines = human.out.splitlines()
    assert lines[0].split()[:5] == ["TRIGGER", "TYPE", "STATUS", "SUBSCRIBERS", "FIRES"]
    row = next(line for line in lines if line.startswith("orders-in"))
    assert "webhook" in row and "active" in row and "audit (manual), orders" in row
    row = next(line for line in lines if line.startswith("nightly.schedule"))
    assert "0 3 * * * Europe/Berlin" in row
    next_at = by_name["nightly.schedule"]["next_at"].replace("T", " ")[:16]
    assert next_at in row


def test_show(app_dir: Path) -> None:
    shown = flowtide(app_dir, "triggers", "show", "orders-in", "--json")
    assert shown.code == 0, shown.err
    doc = shown.json()
    assert doc["schema"]["required"] == ["id"] and doc["options"]["method"] == "POST"
    human = flowtide(app_dir, "triggers", "show", "orders-in")
    assert human.code == 0, human.err
    assert "webhook" in human.out and "/hooks/orders-in" in human.out
    assert "audit (manual), orders" in human.out and "fires        0" in human.out
    missing = flowtide(app_dir, "triggers", "show", "nope")
    assert missing.code == 6 and "unknown trigger 'nope'" in missing.error_line


def test_fire_and_fires(app_dir: Path) -> None:
    fired = flowtide(app_dir, "triggers", "fire", "orders-in", "--input", '{"id": 3}')
    assert fired.code == 0, fired.err
    lines = fired.out.splitlines()
    fire_id = lines[0].strip()
    started = [line for line in lines if line.startswith("started orders ")]
    assert len(started) == 1
    run_id = started[0].split()[-1]
    assert any(line.startswith("skipped audit: manual subscription") for line in lines)
    shown = flowtide(app_dir, "runs", "show", run_id, "--json").json()
    assert shown["trigger"]["name"] == "orders-in" and shown["trigger"]["fire_id"] == fire_id
    assert shown["input"] == {"id": 3}

    (app_dir / "payload.json").write_text('{"id": 4}')
    again = flowtide(app_dir, "triggers", "fire", "orders-in", "--input", "@payload.json", "--json")
    assert again.code == 0, again.err
    record = again.json()
    assert record["payload"] == {"id": 4} and len(record["run_ids"]) == 1

    fires = flowtide(app_dir, "triggers", "fires", "orders-in", "--json").json()
    assert [f["fire_id"] for f in fires["items"]] == [record["fire_id"], fire_id]
    first_page = flowtide(app_dir, "triggers", "fires", "orders-in", "--limit", "1", "--json")
    page = first_page.json()
    assert [f["fire_id"] for f in page["items"]] == [record["fire_id"]]
    rest = flowtide(
        app_dir, "triggers", "fires", "orders-in", "--cursor", page["next_cursor"], "--json"
    ).json()
    assert [f["fire_id"] for f in rest["items"]] == [fire_id]
    human = flowtide(app_dir, "triggers", "fires", "orders-in")
    assert human.code == 0 and fire_id in human.out and record["fire_id"] in human.out
    stats = flowtide(app_dir, "triggers", "show", "orders-in", "--json").json()["stats"]
    assert stats["fires"] == 2 and stats["runs_started"] == 2


def test_fire_errors(app_dir: Path) -> None:
    invalid = flowtide(app_dir, "triggers", "fire", "orders-in", "--input", '{"id": "x"}')
    assert invalid.code == 7 and "id:" in invalid.error_line
    bad_json = flowtide(app_dir, "triggers", "fire", "orders-in", "--input", "{")
    assert bad_json.code == 2 and "not valid JSON" in bad_json.error_line
    unknown = flowtide(app_dir, "triggers", "fire", "nope")
    assert unknown.code == 6 and "unknown trigger" in unknown.error_line
    assert flowtide(app_dir, "triggers", "fires", "orders-in", "--json").json()["items"] == []


def test_pause_and_resume(app_dir: Path) -> None:
    paused = flowtide(app_dir, "triggers", "pause", "orders.manual")
    assert paused.code == 0 and paused.out.strip() == "paused orders.manual"
    shown = flowtide(app_dir, "triggers", "show", "orders.manual", "--json").json()
    assert shown["status"] == "paused"
    refused = flowtide(app_dir, "triggers", "fire", "orders.manual", "--input", '{"id": 1}')
    assert refused.code == 8 and "paused" in refused.error_line
    listed = flowtide(app_dir, "triggers", "list", "--json").json()["items"]
    assert {t["name"]: t["status"] for t in listed}["orders.manual"] == "paused"

    resumed = flowtide(app_dir, "triggers", "resume", "orders.manual", "--json")
    assert resumed.code == 0 and resumed.json()["status"] == "active"
    fired = flowtide(app_dir, "triggers", "fire", "orders.manual", "--input", '{"id": 1}')
    assert fired.code == 0, fired.err
    assert flowtide(app_dir, "triggers", "pause", "nope").code == 6


def test_delete_needs_yes(app_dir: Path) -> None:
    refused = flowtide(app_dir, "triggers", "delete", "orders.manual")
    assert refused.code == 2 and "--yes" in refused.error_line
    assert flowtide(app_dir, "triggers", "show", "orders.manual").code == 0
    deleted = flowtide(app_dir, "triggers", "delete", "orders.manual", "--yes", "--json")
    assert deleted.code == 0 and deleted.json() == {"name": "orders.manual", "deleted": True}
    missing = flowtide(app_dir, "triggers", "delete", "orders.manual", "--yes")
    # the app's definitions declare it, so opening the app brought it back
    assert missing.code == 0


def test_runs_show_lists_awaits_with_deadline_and_url(app_dir: Path) -> None:
    run_id = flowtide(app_dir, "start", "approve", "--input", "{}").out.strip()
    view = flowtide(app_dir, "runs", "show", run_id, "--json").json()
    assert view["status"] == "awaiting"
    (pending,) = view["awaits"]
    assert pending["status"] == "pending" and "/hooks/await/" in pending["url"]
    human = flowtide(app_dir, "runs", "show", run_id)
    assert human.code == 0, human.err
    assert "AWAIT" in human.out and "DEADLINE" in human.out
    row = next(line for line in human.out.splitlines() if line.startswith(pending["await_id"]))
    assert "webhook POST" in row and "pending" in row and pending["url"] in row
    assert pending["deadline"].replace("T", " ")[:19] in row


def _request(url: str, payload: Any, method: str = "POST") -> tuple[int, dict[str, Any]]:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_dev_server_takes_webhooks_and_follows_cli_pauses(app_dir: Path) -> None:
    with spawn(app_dir, "dev", "--port", "0") as dev:
        line = dev.wait_for_line(lambda text: text.startswith("flowtide dev: http://"))
        url = line.split()[2]
        status, body = _request(f"{url}/hooks/orders-in", {"id": 11})
        assert status == 202, body
        run_id = body["run_ids"][0]
        done = flowtide(app_dir, "runs", "follow", run_id, "--timeout", "30")
        assert done.code == 0, done.err
        fires = flowtide(app_dir, "triggers", "fires", "orders-in", "--json").json()["items"]
        assert fires[0]["fire_id"] == body["fire_id"] and fires[0]["source"] == "webhook"

        assert flowtide(app_dir, "triggers", "pause", "orders-in").code == 0
        wait_for(
            lambda: _request(f"{url}/hooks/orders-in", {"id": 12})[0] == 409,
            timeout=10,
            what="the server sees the pause made by another process",
        )
        assert flowtide(app_dir, "triggers", "resume", "orders-in").code == 0
        wait_for(
            lambda: _request(f"{url}/hooks/orders-in", {"id": 13})[0] == 202,
            timeout=10,
            what="the server sees the resume",
        )

        run_id = flowtide(app_dir, "start", "approve", "--input", "{}").out.strip()
        view = flowtide(app_dir, "runs", "show", run_id, "--json").json()
        token_path = view["awaits"][0]["url"].split("/hooks/", 1)[1]
        status, answer = _request(f"{url}/hooks/{token_path}", {"ok": True})
        assert status == 200 and answer["run_id"] == run_id
        assert flowtide(app_dir, "runs", "follow", run_id, "--timeout", "30").code == 0
        assert _request(f"{url}/hooks/{token_path}", {"ok": True})[0] == 410
        assert dev.stop() == 0
