"""Child flowtide processes for multi-process tests: started, and always stopped, by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


class Proc:
    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; return the code."""
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(timeout)
        return self.popen.returncode

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited ({self.popen.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not printed within {timeout}s:\n{self.output()}")
            time.sleep(0.02)


@contextlib.contextmanager
def flowtide_processes(cwd: Path, env: dict[str, str] | None = None) -> Iterator[ProcessGroup]:
    group = ProcessGroup(cwd, env or {})
    try:
        yield group
    finally:
        group.stop_all()


class ProcessGroup:
    """Starts ``python -m flowtide.cli ...`` children in ``cwd``; stops each one by pid."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = {**os.environ, **env}
        self.procs: list[Proc] = []

    def start(self, *args: str, name: str | None = None) -> Proc:
        log = self.cwd / f"{name or args[0]}-{len(self.procs)}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "flowtide.cli", *args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        proc = Proc(popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()


def write_app(root: Path, source: str, backend: str, extra: Sequence[str] = ()) -> None:
    (root / "functions").mkdir(parents=True, exist_ok=True)
    (root / "functions" / "app.py").write_text(source)
    lines = ['app = ["functions"]', f'backend = "{backend}"', *extra]
    (root / "flowtide.toml").write_text("\n".join(lines) + "\n")
