"""The public surface is deliberate: adding or removing a name is a decision, made here."""

from __future__ import annotations

import flowtide
from flowtide import awaits, triggers


def test_public_names_are_pinned() -> None:
    assert sorted(flowtide.__all__) == [
        "App",
        "Backoff",
        "Config",
        "ConfigError",
        "Context",
        "DefinitionError",
        "Flow",
        "InvalidInput",
        "NotFound",
        "SyncApp",
        "__version__",
        "awaits",
        "function",
        "load_config",
        "triggers",
    ]
    for name in flowtide.__all__:
        assert getattr(flowtide, name) is not None


def test_trigger_and_await_declarations_are_pinned() -> None:
    assert sorted(triggers.__all__) == [
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
    assert sorted(awaits.__all__) == ["Await", "event", "time", "until", "webhook"]
