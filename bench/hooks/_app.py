"""The flowtide app of the webhook benchmarks, loaded by ``flowtide serve`` and
``flowtide worker`` (``--app bench.hooks._app``).

- ``hook_in``: an entry step fired by ``triggers.webhook("bench-in")`` (no auth);
- ``hook_gh``: the same fired by ``triggers.webhook("bench-gh", auth=triggers.github(...))``
  (HMAC-SHA256 of the body in ``X-Hub-Signature-256``, delivery id ``X-GitHub-Delivery``);
- ``approval``: ``prepare`` -> ``approve``, whose ``await_before`` is a webhook await.

Every step returns ``time.time()`` at its start (the handler's own view of its start).
"""

from __future__ import annotations

import time
from typing import Any

from flowtide import Context, Flow, awaits, triggers

GITHUB_SECRET_ENV = "BENCH_GITHUB_SECRET"

hook_in = Flow("hook_in", queue="hooks")


@hook_in.entry(triggers=[triggers.webhook("bench-in")])
async def receive(payload: Any, ctx: Context) -> dict[str, float]:
    return {"t": time.time()}


hook_gh = Flow("hook_gh", queue="hooks")


@hook_gh.entry(
    triggers=[triggers.webhook("bench-gh", auth=triggers.github(secret_env=GITHUB_SECRET_ENV))]
)
async def receive_gh(payload: Any, ctx: Context) -> dict[str, float]:
    return {"t": time.time()}


approval = Flow("approval", queue="hooks")


@approval.entry()
async def prepare(i: int, ctx: Context) -> int:
    return i


@approval.step(subscribes=["step:prepare"], await_before=awaits.webhook(timeout="1h"))
async def approve(i: int, ctx: Context) -> dict[str, float]:
    return {"t": time.time()}
