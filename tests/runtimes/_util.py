"""Helpers for runtime tests: a recording host, and process checks (no zombies, no leftovers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class RecordingHost:
    """A Host that answers context requests from a dict and records everything."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.logs: list[tuple[str, str, dict[str, Any]]] = []
        self.lines: list[tuple[str, str]] = []

    async def request(self, type: str, message: dict[str, Any]) -> Any:
        self.requests.append((type, message))
        if type == "state.get":
            return self.state.get(message["key"], message.get("default"))
        if type == "state.set":
            self.state[message["key"]] = message["value"]
        if type == "flows.start":
            raise LookupError(f"unknown flow {message['flow']!r}")
        return None

    def log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        self.logs.append((level, message, fields))

    def output(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, Z...), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def zombie_children() -> list[int]:
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            out.append(int(entry.name))
    return out


def assert_no_leftovers(pids: list[int]) -> None:
    alive = {pid: process_state(pid) for pid in pids if process_state(pid) is not None}
    assert not alive, f"child processes still exist: {alive}"
    assert not zombie_children(), f"zombie children: {zombie_children()}"
