"""Webhook authentication presets: pure checks of a request's exact raw bytes.

Each check compares in constant time and raises :class:`WebhookAuthError` with a reason that
names no secret. Secrets are passed in by the caller (read from the environment variable the
trigger names), never stored with the trigger.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping

from flowtide.definitions.triggers import Auth

__all__ = ["KINDS", "TOLERANCE", "WebhookAuthError", "verify"]

TOLERANCE = 300.0  # seconds a signed timestamp may be off (Stripe, Slack, Standard Webhooks)


class WebhookAuthError(Exception):
    """The request is not authentic; the message says why (never the secret)."""


Headers = Mapping[str, str]


def _header(headers: Headers, name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise WebhookAuthError(f"missing header {name}")


def _digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    try:
        return hmac.new(key, message, algorithm).digest()
    except ValueError:
        raise WebhookAuthError(f"unsupported HMAC algorithm {algorithm!r}") from None


def _same(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def _fresh(timestamp: str, now: float) -> None:
    try:
        ts = float(timestamp)
    except ValueError:
        raise WebhookAuthError("malformed signature timestamp") from None
    if abs(now - ts) > TOLERANCE:
        raise WebhookAuthError("signature timestamp outside the tolerance window")


def _secret_header(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    if not _same(_header(headers, auth.header or "X-Webhook-Secret"), secret):
        raise WebhookAuthError("wrong secret")


def _hmac(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    given = _header(headers, auth.header or "X-Signature").strip()
    if auth.prefix:
        if not given.startswith(auth.prefix):
            raise WebhookAuthError(f"signature does not start with {auth.prefix!r}")
        given = given[len(auth.prefix) :]
    mac = _digest(auth.algorithm, secret.encode(), body)
    expected = base64.b64encode(mac).decode() if auth.encoding == "base64" else mac.hex()
    if not _same(given, expected):
        raise WebhookAuthError("signature mismatch")


def _stripe(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    parts = [p.split("=", 1) for p in _header(headers, "Stripe-Signature").split(",") if "=" in p]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v for k, v in parts if k.strip() == "v1"]
    if not timestamps or not signatures:
        raise WebhookAuthError("malformed Stripe-Signature header")
    _fresh(timestamps[0], now)
    expected = _digest("sha256", secret.encode(), timestamps[0].encode() + b"." + body).hex()
    if not any(_same(sig, expected) for sig in signatures):
        raise WebhookAuthError("signature mismatch")


def _github(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    given = _header(headers, "X-Hub-Signature-256")
    expected = "sha256=" + _digest("sha256", secret.encode(), body).hex()
    if not _same(given, expected):
        raise WebhookAuthError("signature mismatch")


def _standard_webhooks(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    _fresh(timestamp, now)
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        key = base64.b64decode(raw)
    except ValueError:
        raise WebhookAuthError("the configured secret is not base64 (whsec_...)") from None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(_digest("sha256", key, signed)).decode()
    for candidate in _header(headers, "webhook-signature").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and _same(signature, expected):
            return
    raise WebhookAuthError("signature mismatch")


def _slack(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    _fresh(timestamp, now)
    basestring = f"v0:{timestamp}:".encode() + body
    expected = "v0=" + _digest("sha256", secret.encode(), basestring).hex()
    if not _same(_header(headers, "X-Slack-Signature"), expected):
        raise WebhookAuthError("signature mismatch")


Check = Callable[[Auth, Headers, bytes, str, float], None]
_CHECKS: dict[str, Check] = {
    "secret_header": _secret_header,
    "hmac": _hmac,
    "stripe": _stripe,
    "github": _github,
    "standard_webhooks": _standard_webhooks,
    "slack": _slack,
}

KINDS: tuple[str, ...] = tuple(_CHECKS)


def verify(auth: Auth, headers: Headers, body: bytes, secret: str, now: float) -> None:
    """Raise WebhookAuthError unless the request carries a valid signature for ``secret``."""
    check = _CHECKS.get(auth.kind)
    if check is None:
        raise WebhookAuthError(f"unknown authentication preset {auth.kind!r}")
    if not secret:
        raise WebhookAuthError(f"no secret configured ({auth.secret_env} is empty or unset)")
    check(auth, headers, body, secret, now)
