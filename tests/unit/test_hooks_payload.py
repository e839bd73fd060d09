"""Webhook payload parsing and delivery ids (pure functions of flowtide.server.routes.hooks)."""

from __future__ import annotations

import base64

import pytest

from flowtide.server.errors import ApiError
from flowtide.server.routes.hooks import delivery_id, parse_payload

JSON = {"content-type": "application/json; charset=utf-8"}


def test_json_bodies() -> None:
    assert parse_payload("POST", JSON, "", b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_payload("PUT", {"content-type": "application/cloudevents+json"}, "", b"3") == 3
    assert parse_payload("POST", JSON, "ignored=1", b"") is None
    with pytest.raises(ApiError) as caught:
        parse_payload("POST", JSON, "", b"{")
    assert caught.value.status == 400 and caught.value.code == "invalid_json"


def test_query_form_text_and_binary() -> None:
    assert parse_payload("GET", {}, "a=1&b=x&b=y&c=", b"") == {"a": "1", "b": ["x", "y"], "c": ""}
    assert parse_payload("HEAD", {}, "", b"") == {}
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert parse_payload("POST", form, "", b"name=J%C3%BCrgen&x=1") == {"name": "Jürgen", "x": "1"}
    assert parse_payload("POST", {"content-type": "text/plain"}, "", "héllo".encode()) == "héllo"
    assert parse_payload("POST", {}, "", b"no content type") == "no content type"
    blob = b"\xff\xfe\x00binary"
    assert base64.b64decode(parse_payload("POST", {}, "", blob)) == blob


def test_delivery_ids() -> None:
    headers = {"x-delivery": "d1", "X-GitHub-Delivery": "gh-1", "webhook-id": "msg_1"}
    payload = {"id": "evt_1", "event": {"id": 7, "tags": ["a", "b"]}}
    assert delivery_id("header:x-delivery", None, headers, payload) == "d1"
    assert delivery_id("body:event.id", None, headers, payload) == "7"
    assert delivery_id("body:event.tags.1", None, headers, payload) == "b"
    assert delivery_id("body:missing.path", None, headers, payload) is None
    assert delivery_id(None, "stripe", headers, payload) == "evt_1"
    assert delivery_id(None, "github", headers, payload) == "gh-1"
    assert delivery_id(None, "standard_webhooks", headers, payload) == "msg_1"
    assert delivery_id(None, "slack", headers, payload) is None
    assert delivery_id(None, None, headers, payload) is None
    assert delivery_id("header:x-delivery", "stripe", headers, payload) == "d1"  # explicit wins
