"""Shared helpers for the peer benchmarks: deadlines, polling, child processes, stats."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

WORKLOADS: tuple[str, ...] = (
    "enqueue",
    "enqueue_bulk",
    "drain",
    "chain3",
    "latency",
    "state_get",
    "append",
)

#: Full-size n per workload (jobs, jobs, jobs, chain runs, latency samples, reads, appends).
DEFAULT_N: dict[str, int] = {
    "enqueue_bulk": 10_000,
    "enqueue": 10_000,
    "drain": 10_000,
    "chain3": 1_000,
    "latency": 200,
    "state_get": 1_000,
    "append": 2_000,
}

#: The stored item read by ``state_get``: the same value flowtide's ``state_probe`` flow
#: stores with ``ctx.state.set`` (a small dict holding one 64-character string).
STATE_KEY = "key"
STATE_VALUE: dict[str, str] = {"value": "x" * 64}


def append_record(i: int) -> dict[str, int]:
    """The small record written by the i-th ``append`` call (flowtide's log-event payload)."""
    return {"message": i}


#: Global wall-clock budget for one workload run, in seconds.
WORKLOAD_TIMEOUT_S = 120.0

#: How often the parent polls the storage for a completion condition.
POLL_INTERVAL_S = 0.005

PeerResult = dict[str, Any]

#: Root directory that must be on the child's sys.path for ``bench.peers`` to import.
PACKAGE_NAME = __name__.rsplit(".", 1)[0]
PACKAGE_ROOT = Path(__file__).resolve().parents[len(PACKAGE_NAME.split("."))]


class WorkloadTimeout(TimeoutError):
    """A workload did not finish inside its time budget."""


class WorkerDied(RuntimeError):
    """The worker child process exited before the workload finished."""


class Deadline:
    """A fixed point in time after which the workload is abandoned."""

    def __init__(self, workload: str, seconds: float = WORKLOAD_TIMEOUT_S) -> None:
        self.workload = workload
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self, what: str) -> None:
        if time.monotonic() >= self.at:
            raise WorkloadTimeout(
                f"workload {self.workload!r} exceeded its {self.seconds:g} s budget while {what}"
            )


def validate(workload: str, n: int) -> None:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; expected one of {WORKLOADS}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory that is removed afterwards, whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=f"flowtide-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """A worker child process started by this module, logged to a file, stopped by pid."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise WorkerDied(
                f"worker pid {self.pid} exited with code {code}; log tail:\n"
                f"{log_tail(self.log_path)}"
            )


def _stop_pid(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the child (and its own process group), escalate to SIGKILL, reap it."""
    if proc.poll() is not None:
        return
    # The child was started with start_new_session=True, so its process group id is
    # its pid and the group holds only the child and anything it spawned.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=grace_s)


@contextlib.contextmanager
def child_process(
    module: str, args: Sequence[str], env: dict[str, str], log_path: Path
) -> Iterator[Child]:
    """Run ``python -m module *args`` as a child; always stop it by pid on exit."""
    full_env = dict(os.environ)
    full_env.update(env)
    old_path = full_env.get("PYTHONPATH")
    full_env["PYTHONPATH"] = (
        f"{PACKAGE_ROOT}{os.pathsep}{old_path}" if old_path else str(PACKAGE_ROOT)
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(PACKAGE_ROOT),
            start_new_session=True,
        )
        try:
            yield Child(proc, log_path)
        finally:
            _stop_pid(proc)


def wait_for(
    predicate: Callable[[], bool],
    deadline: Deadline,
    what: str,
    child: Child | None = None,
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Poll ``predicate`` until true; raise on deadline or if the worker child died."""
    while not predicate():
        if child is not None:
            child.check_alive()
        deadline.check(what)
        time.sleep(interval)


def read_ready_time(path: Path) -> float | None:
    """The time.time() a worker wrote into its ready file, or None if not written yet."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return float(text) if text else None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def latency_result(gaps_ms: Sequence[float], note: str) -> PeerResult:
    p50 = percentile(gaps_ms, 50)
    return {
        "value": p50,
        "unit": "ms",
        "p50": p50,
        "p95": percentile(gaps_ms, 95),
        "note": f"{note}; samples={len(gaps_ms)}, max={max(gaps_ms):.3f} ms",
    }
