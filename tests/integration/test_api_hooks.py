"""``/hooks/{trigger}``: webhook intake through the ASGI app on the memory and SQLite backends.

Signatures are made with the providers' own libraries (stripe, standardwebhooks, svix,
slack_sdk) or, for GitHub and generic HMAC, with ``hmac`` as the providers document it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
import stripe
import svix
from slack_sdk.signature import SignatureVerifier

from flowtide.server.routes import hooks
from tests.integration._triggers_harness import (
    BACKENDS,
    SECRETS,
    Harness,
    assert_error,
    harness,
)

STRIPE_SECRET = "whsec_test_stripe_0123456789"
GITHUB_SECRET = "It's a Secret to Everybody"
STDWH_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-bytes!!").decode()
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
HMAC_SECRET = "generic-hmac-secret"
HEADER_SECRET = "shared-token-value"
ALL_SECRETS = (STRIPE_SECRET, GITHUB_SECRET, STDWH_SECRET, SLACK_SECRET, HMAC_SECRET, HEADER_SECRET)


@pytest.fixture(params=BACKENDS)
async def h(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    for kind, value in (
        ("stripe", STRIPE_SECRET),
        ("github", GITHUB_SECRET),
        ("standard_webhooks", STDWH_SECRET),
        ("slack", SLACK_SECRET),
        ("hmac", HMAC_SECRET),
        ("secret_header", HEADER_SECRET),
    ):
        monkeypatch.setenv(SECRETS[kind], value)
    monkeypatch.delenv("FT_TEST_NEVER_SET_SECRET", raising=False)
    async with harness(request.param, tmp_path) as opened:
        yield opened


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def post(h: Harness, trigger: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await h.client.post(
        f"/hooks/{trigger}", content=body, headers={"content-type": "application/json", **headers}
    )


async def accepted(h: Harness, r: httpx.Response) -> dict[str, Any]:
    """A new fire answers 202, a redelivery 200 with ``"duplicate": true``."""
    body: dict[str, Any] = r.json()
    assert r.status_code == (200 if body.get("duplicate") else 202), r.text
    assert set(body) >= {"fire_id", "run_ids", "duplicate"}
    return body


# -- signing, one function per provider ------------------------------------------------------
def stripe_headers(body: bytes, secret: str = STRIPE_SECRET) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
    stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)  # self-check
    return {"Stripe-Signature": header}


def github_headers(body: bytes, secret: str = GITHUB_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": str(uuid.uuid4())}


def stdwh_headers(body: bytes, secret: str = STDWH_SECRET) -> dict[str, str]:
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def svix_headers(body: bytes, secret: str = STDWH_SECRET) -> dict[str, str]:
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    signature = svix.Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def slack_headers(body: bytes, secret: str = SLACK_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


def hmac_headers(body: bytes, secret: str = HMAC_SECRET) -> dict[str, str]:
    return {"X-Sig": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def hmac64_headers(body: bytes, secret: str = HMAC_SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha512).digest()
    return {"X-Sig": base64.b64encode(mac).decode()}


def header_headers(body: bytes, secret: str = HEADER_SECRET) -> dict[str, str]:
    return {"X-Token": secret}


Signer = Callable[..., dict[str, str]]
PROVIDERS: list[tuple[str, str, Signer]] = [
    ("stripe", "stripe-in", stripe_headers),
    ("github", "github-in", github_headers),
    ("standard_webhooks", "stdwh-in", stdwh_headers),
    ("svix", "stdwh-in", svix_headers),
    ("slack", "slack-in", slack_headers),
    ("hmac", "hmac-in", hmac_headers),
    ("hmac-sha512-base64", "hmac64-in", hmac64_headers),
    ("secret_header", "header-in", header_headers),
]
IDS = [p[0] for p in PROVIDERS]


@pytest.mark.parametrize(("provider", "trigger", "sign"), PROVIDERS, ids=IDS)
async def test_signed_webhook_fires(h: Harness, provider: str, trigger: str, sign: Signer) -> None:
    payload = {"id": f"evt_{uuid.uuid4().hex}", "type": "thing.happened", "n": 1}
    body = body_of(payload)
    fire = await accepted(h, await post(h, trigger, body, sign(body)))
    assert fire["duplicate"] is False and len(fire["run_ids"]) == 1
    view = await h.app.wait(fire["run_ids"][0], timeout=10)
    assert view["status"] == "completed" and view["result"] == payload
    assert view["trigger"]["name"] == trigger and view["trigger"]["type"] == "webhook"
    (record,) = await h.fires(trigger)
    assert record["fire_id"] == fire["fire_id"] and record["source"] == "webhook"


@pytest.mark.parametrize(("provider", "trigger", "sign"), PROVIDERS, ids=IDS)
async def test_wrong_or_missing_signature_is_401_and_fires_nothing(
    h: Harness, provider: str, trigger: str, sign: Signer
) -> None:
    body = body_of({"id": "evt_1", "n": 1})
    wrong_secret = sign(body, secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    cases = [(wrong_secret, body), ({}, body)]
    if provider != "secret_header":  # a shared secret in a header does not sign the body
        cases.append((sign(body), body_of({"id": "evt_1", "n": 2})))  # changed after signing
    for headers, content in cases:
        r = await post(h, trigger, content, headers)
        assert_error(r, 401, "unauthorized")
        assert not any(secret in r.text for secret in ALL_SECRETS)
    assert await h.fires(trigger) == []
    assert await h.runs_of("signed") == []


async def test_stale_timestamp_is_401(h: Harness) -> None:
    body = body_of({"id": "evt_old"})
    old = int(time.time()) - 3600
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, old)
    r = await post(h, "stripe-in", body, {"Stripe-Signature": header})
    assert "tolerance" in assert_error(r, 401, "unauthorized")["message"]
    assert await h.fires("stripe-in") == []


async def test_missing_secret_variable_is_500_naming_it(h: Harness) -> None:
    body = body_of({"a": 1})
    r = await post(h, "unset-in", body, github_headers(body))
    error = assert_error(r, 500, "webhook_misconfigured")
    assert "FT_TEST_NEVER_SET_SECRET" in error["message"]
    assert await h.fires("unset-in") == []


async def test_secret_never_appears_in_answers(h: Harness) -> None:
    body = body_of({"a": 1})
    r = await post(h, "github-in", body, {"X-Hub-Signature-256": "sha256=00"})
    assert r.status_code == 401 and GITHUB_SECRET not in r.text


# -- delivery ids -----------------------------------------------------------------------------
async def test_stripe_redelivery_fires_once(h: Harness) -> None:
    body = body_of({"id": "evt_same", "type": "charge.succeeded"})
    r1 = await post(h, "stripe-in", body, stripe_headers(body))
    r2 = await post(h, "stripe-in", body, stripe_headers(body))
    assert (r1.status_code, r2.status_code) == (202, 200)
    first, again = await accepted(h, r1), await accepted(h, r2)
    assert again == {**first, "duplicate": True}
    assert first["duplicate"] is False
    assert len(await h.fires("stripe-in")) == 1
    stats = await h.app.trigger_service.stats("stripe-in")
    assert stats["fires"] == 1 and stats["runs_started"] == 1


async def test_github_and_standard_webhooks_delivery_headers(h: Harness) -> None:
    body = body_of({"action": "opened"})
    headers = github_headers(body)
    first = await accepted(h, await post(h, "github-in", body, headers))
    again = await accepted(h, await post(h, "github-in", body, headers))
    assert again["duplicate"] is True and again["fire_id"] == first["fire_id"]
    other = await accepted(h, await post(h, "github-in", body, github_headers(body)))
    assert other["fire_id"] != first["fire_id"] and other["duplicate"] is False

    headers = stdwh_headers(body)
    first = await accepted(h, await post(h, "stdwh-in", body, headers))
    again = await accepted(h, await post(h, "stdwh-in", body, headers))
    assert again["duplicate"] is True and again["run_ids"] == first["run_ids"]
    assert len(await h.fires("github-in")) == 2 and len(await h.fires("stdwh-in")) == 1


async def test_configured_header_and_body_delivery_ids(h: Harness) -> None:
    r1 = await h.client.post("/hooks/idem-header", json={"n": 1}, headers={"X-Delivery": "d-1"})
    r2 = await h.client.post("/hooks/idem-header", json={"n": 2}, headers={"X-Delivery": "d-1"})
    r3 = await h.client.post("/hooks/idem-header", json={"n": 3}, headers={"X-Delivery": "d-2"})
    r4 = await h.client.post("/hooks/idem-header", json={"n": 4})  # no delivery id: no dedupe
    first, dup, other, plain = [await accepted(h, r) for r in (r1, r2, r3, r4)]
    assert dup["fire_id"] == first["fire_id"] and dup["duplicate"] is True
    assert len({first["fire_id"], other["fire_id"], plain["fire_id"]}) == 3
    fires = await h.fires("idem-header")
    assert len(fires) == 3
    assert {f["delivery_id"] for f in fires} == {"d-1", "d-2", None}

    a = await accepted(h, await h.client.post("/hooks/idem-body", json={"event": {"id": 7}}))
    b = await accepted(h, await h.client.post("/hooks/idem-body", json={"event": {"id": 7}}))
    c = await accepted(h, await h.client.post("/hooks/idem-body", json={"event": {"id": 8}}))
    assert b["fire_id"] == a["fire_id"] and b["duplicate"] is True
    assert c["fire_id"] != a["fire_id"]
    assert len(await h.fires("idem-body")) == 2


async def test_concurrent_duplicates_fire_once(h: Harness) -> None:
    body = body_of({"id": "evt_burst", "n": 1})
    results = await asyncio.gather(
        *(post(h, "stripe-in", body, stripe_headers(body)) for _ in range(8))
    )
    answers = [await accepted(h, r) for r in results]
    assert len({a["fire_id"] for a in answers}) == 1
    assert len({tuple(a["run_ids"]) for a in answers}) == 1
    assert sum(1 for a in answers if not a["duplicate"]) == 1
    assert len(await h.fires("stripe-in")) == 1
    assert len(await h.runs_of("signed")) == 1


async def test_an_unfinished_first_delivery_is_completed_once_by_the_redelivery(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that claimed the delivery id and died before its fire: the redelivery waits
    for the record, then fires under the claimed id, once."""
    monkeypatch.setattr(hooks, "DUPLICATE_WAIT", 0.5)
    claimed = {"fire_id": str(uuid.uuid4()), "ts": time.time() - 10}
    await h.app.backend.put_record("idem:idem-header", "lost-1", claimed, only_new=True)
    started = time.monotonic()
    r = await h.client.post("/hooks/idem-header", json={"n": 1}, headers={"X-Delivery": "lost-1"})
    fire = await accepted(h, r)
    assert time.monotonic() - started >= 0.45  # it waited for the first delivery's record
    assert fire["fire_id"] == claimed["fire_id"] and fire["duplicate"] is True
    again = await accepted(
        h,
        await h.client.post("/hooks/idem-header", json={"n": 1}, headers={"X-Delivery": "lost-1"}),
    )
    assert again["run_ids"] == fire["run_ids"]
    assert len(await h.fires("idem-header")) == 1


# -- limits, methods, status, bodies --------------------------------------------------------
async def test_rate_limit_is_429_with_retry_after(h: Harness) -> None:
    for n in range(3):
        await accepted(h, await h.client.post("/hooks/limited", json={"n": n}))
    r = await h.client.post("/hooks/limited", json={"n": 3})
    error = assert_error(r, 429, "rate_limited")
    assert "3/hour" in error["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert len(await h.fires("limited")) == 3
    assert (await h.app.trigger_service.stats("limited"))["fires"] == 3


async def test_get_webhook_takes_the_query_string(h: Harness) -> None:
    r = await h.client.get("/hooks/get-in", params=[("a", "1"), ("b", "x"), ("b", "y")])
    fire = await accepted(h, r)
    view = await h.app.wait(fire["run_ids"][0], timeout=10)
    assert view["result"] == {"a": "1", "b": ["x", "y"]}
    r = await h.client.post("/hooks/get-in", json={})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"


async def test_form_and_raw_bodies(h: Harness) -> None:
    r = await h.client.post("/hooks/raw-in", data={"name": "Ada Lovelace", "role": "analyst"})
    fire = await accepted(h, r)
    assert (await h.app.wait(fire["run_ids"][0], timeout=10))["result"] == {
        "name": "Ada Lovelace",
        "role": "analyst",
    }
    r = await h.client.post(
        "/hooks/raw-in", content=b"<ping>1</ping>", headers={"content-type": "text/xml"}
    )
    view = await h.app.wait((await accepted(h, r))["run_ids"][0], timeout=10)
    assert view["result"] == "<ping>1</ping>"
    blob = bytes(range(256))
    r = await h.client.post(
        "/hooks/raw-in", content=blob, headers={"content-type": "application/octet-stream"}
    )
    view = await h.app.wait((await accepted(h, r))["run_ids"][0], timeout=10)
    assert base64.b64decode(view["result"]) == blob
    r = await h.client.post(
        "/hooks/raw-in", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(r, 400, "invalid_json")


async def test_method_not_allowed_is_405_with_allow(h: Harness) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = await h.client.request(method, "/hooks/orders-in")
        assert_error(r, 405, "method_not_allowed")
        assert r.headers["Allow"] == "POST"
    assert await h.fires("orders-in") == []


async def test_unknown_trigger_404_and_other_types_400(h: Harness) -> None:
    assert_error(await h.client.post("/hooks/no-such-hook", json={}), 404, "not_found")
    for name, kind in (
        ("orders.manual", "manual"),
        ("order.placed", "event"),
        ("nightly.schedule", "schedule"),
    ):
        error = assert_error(await h.client.post(f"/hooks/{name}", json={"id": 1}), 400)
        assert error["code"] == "not_a_webhook" and f"a {kind} trigger" in error["message"]


async def test_paused_webhook_is_409(h: Harness) -> None:
    await h.app.trigger_service.set_status("orders-in", True)
    assert_error(await h.client.post("/hooks/orders-in", json={"id": 1}), 409, "paused")
    await h.app.trigger_service.set_status("orders-in", False)
    await accepted(h, await h.client.post("/hooks/orders-in", json={"id": 1}))
    assert len(await h.fires("orders-in")) == 1


async def test_schema_violation_is_422_with_field_errors(h: Harness) -> None:
    r = await h.client.post("/hooks/orders-in", json={"item": "pen"})
    error = assert_error(r, 422, "invalid_input")
    assert error["errors"] == [{"loc": ["id"], "msg": "Field required", "type": "missing"}]
    assert await h.fires("orders-in") == []
    fire = await accepted(h, await h.client.post("/hooks/orders-in", json={"id": 2}))
    assert fire["run_ids"] and len(await h.fires("orders-in")) == 1


async def test_a_burst_of_webhooks_all_fire(h: Harness) -> None:
    results = await asyncio.gather(
        *(h.client.post("/hooks/orders-in", json={"id": n}) for n in range(50))
    )
    fire_ids = {(await accepted(h, r))["fire_id"] for r in results}
    assert len(fire_ids) == 50
    assert len(await h.fires("orders-in")) == 50
