"""Human-readable output: rich tables and one-line event descriptions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from flowtide._util.jsonutil import dumps_str

__all__ = ["STATUS_STYLE", "error_text", "event_line", "short", "styled", "table"]

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "canceled": "yellow",
    "stalled": "magenta",
    "running": "cyan",
    "awaiting": "blue",
    "retrying": "yellow",
    "waiting": "cyan",
    "delayed": "blue",
    "active": "cyan",
    "pending": "dim",
}
_EVENT_STYLE = {
    "flow.completed": "green",
    "flow.failed": "red",
    "flow.canceled": "yellow",
    "flow.stalled": "magenta",
    "step.completed": "green",
    "step.failed": "red",
    "step.retrying": "yellow",
    "step.stalled": "magenta",
    "log": "dim",
}


def styled(status: str | None) -> Text:
    value = status or ""
    return Text(value, style=STATUS_STYLE.get(value, ""))


def short(value: Any, width: int = 60) -> str:
    """A compact one-line rendering of any JSON value."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else dumps_str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> Table:
    """A borderless table whose first column (an id or name) is never shortened."""
    rows = list(rows)
    key_width = max([len(columns[0]), *(len(str(row[0])) for row in rows)])
    out = Table(box=None, header_style="bold", pad_edge=False)
    out.add_column(columns[0], no_wrap=True, min_width=key_width)
    for name in columns[1:]:
        out.add_column(name)
    for row in rows:
        out.add_row(*row)
    return out


def error_text(error: Any) -> str:
    """``RuntimeError: boom (step charge)`` for an error dict; never its traceback."""
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        message = short(error.get("message") or error.get("reason") or "", 200)
        text = f"{kind}: {message}" if kind and message else str(message or kind or "")
        return f"{text} (step {error['step']})" if error.get("step") else text
    return short(error, 200)


def _detail(event: dict[str, Any]) -> str:
    kind, data = event["type"], event.get("data")
    if not data:
        return ""
    if not isinstance(data, dict):
        return short(data)
    if kind in ("step.failed", "step.retrying", "flow.failed", "flow.stalled"):
        return error_text(data.get("error") or data.get("reason") or data)
    if kind == "step.completed":
        took = data.get("duration_ms")
        result = short(data.get("result"))
        return f"{took:.0f}ms  {result}".rstrip() if isinstance(took, int | float) else result
    if kind == "flow.completed":
        return short(data.get("result"))
    if kind == "flow.started":
        return f"input {short(data['input'])}" if data.get("input") is not None else ""
    if kind == "flow.canceled":
        return str(data.get("reason", ""))
    if kind == "emit":
        return f"{data.get('name', '')} {short(data.get('payload'))}".rstrip()
    if kind == "log":
        fields = data.get("fields") or {}
        extra = f" {short(fields)}" if fields else ""
        return f"[{data.get('level', 'info')}] {data.get('message', '')}{extra}"
    if kind == "state":
        op = data.get("op", "set")
        value = "" if op == "delete" else f" = {short(data.get('value'))}"
        return f"{op} {data.get('key', '')}{value}"
    return short(data)


def event_line(event: dict[str, Any]) -> Text:
    """``12:00:01.234  #3  step.completed   charge (attempt 1)  {"ok": true}``."""
    ts = str(event.get("ts") or "")
    clock = ts[11:23] if len(ts) >= 23 else ts
    kind = str(event["type"])
    line = Text()
    line.append(f"{clock}  #{event.get('seq', '?'):<3} ", style="dim")
    line.append(f"{kind:<16}", style=_EVENT_STYLE.get(kind, "bold"))
    step = event.get("step")
    if step:
        attempt = event.get("attempt")
        line.append(f" {step}")
        if attempt:
            line.append(f" (attempt {attempt})", style="dim")
    detail = _detail(event)
    if detail:
        line.append(f"  {detail}")
    return line
