"""Shared helpers of the command-line tests (no tests here): a tiny app written into a
directory, one-shot CLI invocations and long-running CLI child processes.

Every child is a real process started as ``python -m flowtide.cli``; tests wait on conditions
(a line of output, a file, a URL) with bounded timeouts and always stop children by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "flowtide.cli"]
RUN_TIMEOUT = 60.0  # a one-shot command never takes this long
STOP_GRACE = 15.0  # SIGTERM, then SIGKILL after this many seconds

APP_MODULE = """
import asyncio
import time
from pathlib import Path

from pydantic import BaseModel

from flowtide import Context, Flow

demo = Flow("demo", description="Two steps wired by an event")


@demo.entry(emits=["demo.begun"])
async def begin(data: object, ctx: Context) -> dict:
    ctx.log.info("beginning", input=data)
    await ctx.emit("demo.begun", {"n": 1})
    return {"begun": True}


@demo.step(subscribes=["demo.begun"])
def finish(event: dict, ctx: Context) -> dict:
    return {"finished": event["n"]}


broken = Flow("broken")


@broken.entry()
async def explode(data: object, ctx: Context) -> None:
    raise RuntimeError("boom")


class Order(BaseModel):
    id: int
    item: str = "book"


typed = Flow("typed")


@typed.entry()
async def take(order: Order, ctx: Context) -> int:
    return order.id


gated = Flow("gated", description="Holds until the file named by input.gate exists")


@gated.entry()
async def hold(data: dict, ctx: Context) -> str:
    Path(data["started"]).touch()
    deadline = time.monotonic() + 60
    while not Path(data["gate"]).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gate never opened")
        await asyncio.sleep(0.02)
    return "released"
"""

BROKEN_MODULE = """
from flowtide import Context, Flow

bad = Flow("bad")


@bad.entry()
async def first(data: object, ctx: Context) -> None: ...


@bad.step(subscribes=["never.emitted"])
async def second(data: object, ctx: Context) -> None: ...
"""

CONFIG = 'backend = "sqlite:///flowtide.db"\n\n[worker]\nshutdown_grace = "20s"\n'


def write_app(root: Path, module: str = APP_MODULE, config: str = CONFIG) -> Path:
    (root / "functions").mkdir(parents=True, exist_ok=True)
    (root / "functions" / "flows.py").write_text(module)
    (root / "flowtide.toml").write_text(config)
    return root


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTIDE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout must be exactly one JSON document."""
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        """stderr must be exactly one line (no traceback)."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {self.err!r}"
        assert "Traceback" not in self.err
        return lines[0]


def flowtide(root: Path, *args: str, timeout: float = RUN_TIMEOUT) -> Result:
    done = subprocess.run(
        [*CLI, *args],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class Child:
    """A long-running CLI process whose stdout and stderr are read by background threads."""

    def __init__(self, root: Path, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [*CLI, *args],
            cwd=root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, match: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first stdout line ``match`` accepts; fails if the process exits first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.out:
                    if match(line):
                        return line
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(
                        f"flowtide {' '.join(self.args)} exited {self.proc.returncode} "
                        f"first; stderr: {self.stderr}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching line from flowtide {' '.join(self.args)} in {timeout}s; "
                        f"stdout: {self.out}, stderr: {self.stderr}"
                    )
                self._changed.wait(min(left, 0.2))

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait_exit(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.wait_exit(grace)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)


@contextmanager
def spawn(root: Path, *args: str) -> Iterator[Child]:
    child = Child(root, *args)
    try:
        yield child
    finally:
        child.stop()


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what}")
        time.sleep(0.02)
