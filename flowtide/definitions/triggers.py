"""Trigger declarations (``triggers.event``, ``.webhook``, ``.schedule``, ``.manual``): plain data.

The registry validates them when the app loads; the trigger system acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flowtide._util.durations import Duration, parse_duration

__all__ = [
    "Auth",
    "Trigger",
    "event",
    "github",
    "hmac",
    "manual",
    "schedule",
    "secret_header",
    "slack",
    "standard_webhooks",
    "stripe",
    "webhook",
]

TriggerType = Literal["event", "webhook", "schedule", "manual"]
Mode = Literal["auto", "manual"]


@dataclass(frozen=True, slots=True)
class Auth:
    """How a webhook request is authenticated; the secret is read from ``secret_env``."""

    kind: str
    secret_env: str
    header: str | None = None
    algorithm: str = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class Trigger:
    type: TriggerType
    name: str | None
    mode: Mode = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    schema: Any = None

    def resolved_name(self, flow: str) -> str:
        return self.name if self.name is not None else f"{flow}.{self.type}"


def event(name: str, *, from_emits: bool = False, mode: Mode = "auto") -> Trigger:
    return Trigger("event", name, mode, {"from_emits": from_emits})


def webhook(
    name: str,
    *,
    method: str = "POST",
    schema: Any = None,
    auth: Auth | None = None,
    idempotency: str | None = None,
    rate_limit: str | None = None,
    mode: Mode = "auto",
) -> Trigger:
    options = {
        "method": method.upper(),
        "auth": auth,
        "idempotency": idempotency,
        "rate_limit": rate_limit,
    }
    return Trigger("webhook", name, mode, options, schema)


def schedule(
    cron: str | None = None,
    *,
    every: Duration | None = None,
    tz: str = "UTC",
    overlap: Literal["skip", "queue", "replace"] = "skip",
    catch_up: Literal["none", "once"] = "none",
    name: str | None = None,
    mode: Mode = "auto",
) -> Trigger:
    if (cron is None) == (every is None):
        raise ValueError("triggers.schedule needs exactly one of a cron expression or every=")
    interval = None if every is None else parse_duration(every)
    options = {"cron": cron, "every": interval, "tz": tz, "overlap": overlap, "catch_up": catch_up}
    return Trigger("schedule", name, mode, options)


def manual(*, schema: Any = None, name: str | None = None) -> Trigger:
    return Trigger("manual", name, "auto", {}, schema)


def secret_header(header: str, secret_env: str) -> Auth:
    return Auth("secret_header", secret_env, header=header)


def hmac(
    secret_env: str,
    *,
    header: str = "X-Signature",
    algorithm: str = "sha256",
    encoding: Literal["hex", "base64"] = "hex",
    prefix: str = "",
) -> Auth:
    return Auth("hmac", secret_env, header, algorithm, encoding, prefix)


def stripe(secret_env: str) -> Auth:
    return Auth("stripe", secret_env, header="Stripe-Signature")


def github(secret_env: str) -> Auth:
    return Auth("github", secret_env, header="X-Hub-Signature-256", prefix="sha256=")


def standard_webhooks(secret_env: str) -> Auth:
    return Auth("standard_webhooks", secret_env, header="webhook-signature", encoding="base64")


def slack(secret_env: str) -> Auth:
    return Auth("slack", secret_env, header="X-Slack-Signature", prefix="v0=")
