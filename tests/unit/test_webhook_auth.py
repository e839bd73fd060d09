"""Webhook signature presets, checked against signatures made by the providers' own libraries
(stripe, standardwebhooks, svix, slack_sdk) and, for GitHub and generic HMAC, by their
documented algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest

from flowtide import triggers
from flowtide.engine.webhook_auth import WebhookAuthError, verify

BODY = b'{"id": "evt_1", "type": "order.created", "amount": 4200}'


def test_stripe_signature_from_the_stripe_library() -> None:
    stripe = pytest.importorskip("stripe")
    secret = "whsec_test_secret"
    now = time.time()
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, int(now))
    auth = triggers.stripe("STRIPE_SECRET")
    verify(auth, {"Stripe-Signature": header}, BODY, secret, now)
    with pytest.raises(WebhookAuthError, match="mismatch"):
        verify(auth, {"Stripe-Signature": header}, BODY + b" ", secret, now)
    with pytest.raises(WebhookAuthError, match="tolerance"):
        verify(auth, {"Stripe-Signature": header}, BODY, secret, now + 301)
    with pytest.raises(WebhookAuthError, match="missing header"):
        verify(auth, {}, BODY, secret, now)


@pytest.mark.parametrize("library", ["standardwebhooks", "svix"])
def test_standard_webhooks_from_standardwebhooks_and_svix(library: str) -> None:
    module = pytest.importorskip("standardwebhooks" if library == "standardwebhooks" else "svix")
    webhook_class = module.Webhook if library == "standardwebhooks" else module.webhooks.Webhook
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    when = datetime.now(UTC).replace(microsecond=0)
    signature = webhook_class(secret).sign("msg_1", when, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
    auth = triggers.standard_webhooks("WEBHOOK_SECRET")
    verify(auth, headers, BODY, secret, when.timestamp())
    with pytest.raises(WebhookAuthError, match="mismatch"):
        verify(auth, {**headers, "webhook-id": "msg_2"}, BODY, secret, when.timestamp())
    with pytest.raises(WebhookAuthError, match="tolerance"):
        verify(auth, headers, BODY, secret, when.timestamp() + 600)


def test_slack_signature_from_slack_sdk() -> None:
    signature_module = pytest.importorskip("slack_sdk.signature")
    secret = "slack-signing-secret"
    now = time.time()
    timestamp = str(int(now))
    verifier = signature_module.SignatureVerifier(secret)
    signature = verifier.generate_signature(timestamp=timestamp, body=BODY)
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    auth = triggers.slack("SLACK_SECRET")
    verify(auth, headers, BODY, secret, now)
    with pytest.raises(WebhookAuthError):
        verify(auth, headers, BODY, "another-secret", now)


def test_github_signature() -> None:
    secret = "gh-secret"
    digest = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    auth = triggers.github("GITHUB_SECRET")
    verify(auth, {"X-Hub-Signature-256": f"sha256={digest}"}, BODY, secret, 0)
    with pytest.raises(WebhookAuthError, match="mismatch"):
        verify(auth, {"x-hub-signature-256": f"sha256={digest[:-1]}0"}, BODY, secret, 0)


@pytest.mark.parametrize(
    ("encoding", "prefix", "algorithm"),
    [("hex", "", "sha256"), ("base64", "", "sha256"), ("hex", "sha512=", "sha512")],
)
def test_generic_hmac(encoding: str, prefix: str, algorithm: str) -> None:
    secret = "shared"
    mac = hmac.new(secret.encode(), BODY, algorithm).digest()
    value = base64.b64encode(mac).decode() if encoding == "base64" else mac.hex()
    auth = triggers.hmac(
        "S",
        header="X-Sig",
        algorithm=algorithm,
        encoding=encoding,
        prefix=prefix,  # type: ignore[arg-type]
    )
    verify(auth, {"X-Sig": prefix + value}, BODY, secret, 0)
    with pytest.raises(WebhookAuthError):
        verify(auth, {"X-Sig": prefix + value}, b"tampered", secret, 0)


def test_secret_header_and_missing_secret() -> None:
    auth = triggers.secret_header("X-Token", "TOKEN_ENV")
    verify(auth, {"x-token": "s3cret"}, BODY, "s3cret", 0)
    with pytest.raises(WebhookAuthError, match="wrong secret"):
        verify(auth, {"X-Token": "guess"}, BODY, "s3cret", 0)
    with pytest.raises(WebhookAuthError, match="TOKEN_ENV"):
        verify(auth, {"X-Token": ""}, BODY, "", 0)
