"""Per-child invocation bookkeeping: invocations in flight, their deadlines and cancels."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from flowtide.runtimes._io import _pending_bytes
from flowtide.runtimes._state import _ChildState
from flowtide.runtimes._types import ChildFailed, Host, Invocation, Outcome, _Run
from flowtide.runtimes.protocol import ProtocolError, error_body


class _Invocations(_ChildState):
    """Runs invocations on the child and settles each one exactly once."""

    async def invoke(self, inv: Invocation, host: Host) -> Outcome:
        """Run one invocation; never raises except on cancellation."""
        if not self.alive:
            failure = self.failure or ChildFailed(
                "ChildCrashed", f"the {self.runtime} child (pid {self.pid}) is gone"
            )
            return failure.outcome()
        loop = self._loop
        assert loop is not None
        self.jobs += 1
        inv_id = f"i{next(self._ids)}"
        message: dict[str, Any] = {
            "type": "invoke",
            "id": inv_id,
            "handler": inv.handler,
            "input": inv.input,
            "context": inv.context,
        }
        if inv.timeout is not None:
            message["deadline_ms"] = int(inv.timeout * 1000)
        try:
            self._send(message)
        except ProtocolError as exc:
            return Outcome(False, error=error_body(exc.type, str(exc)), retryable=False)
        except ChildFailed as exc:
            return exc.outcome()
        if not self.running:
            self.last_seen = time.monotonic()
            self.stderr_tail.clear()
        run = _Run(inv_id, host, loop.create_future(), inv.timeout)
        self.running[inv_id] = run
        if inv.timeout is not None:
            run.deadline = loop.call_later(inv.timeout, self._on_deadline, run)
        try:
            outcome = await run.fut
        except asyncio.CancelledError:
            if inv_id in self.running:
                self._abandon(run, "the worker is stopping")
            raise
        if self._emptied_by is run:
            self._emptied_by = None
            if not self.running and self.failure is None:
                await self._settle_output(run)
        return outcome

    def _complete(self, run: _Run, outcome: Outcome) -> None:
        running = self.running
        running.pop(run.id, None)
        if not running:
            self._emptied_by = run  # its task lets the child's last output arrive first
        if run.deadline is not None:
            run.deadline.cancel()
        if run.grace is not None:
            run.grace.cancel()
        if not run.fut.done():
            run.fut.set_result(outcome)

    def _fail_running(self) -> None:
        if not self.running:
            return
        failure = self.failure or ChildFailed(
            "ChildCrashed", f"the {self.runtime} child (pid {self.pid}) is gone"
        )
        for run in list(self.running.values()):
            self._complete(run, failure.outcome())

    def _on_deadline(self, run: _Run) -> None:
        """The step's timeout passed: ask the child to cancel it, kill it after the grace."""
        run.deadline = None
        if run.id not in self.running or run.timed_out:
            return
        run.timed_out = True
        self._cancel(run, "timeout")

    def _abandon(self, run: _Run, reason: str) -> None:
        run.abandoned = True
        if not run.timed_out:
            self._cancel(run, reason)

    def _cancel(self, run: _Run, reason: str) -> None:
        try:
            self._send({"type": "cancel", "id": run.id, "reason": reason})
        except (ChildFailed, ProtocolError):
            pass
        loop = asyncio.get_running_loop()
        run.grace = loop.call_later(self.cancel_grace, self._on_cancel_ignored, run)

    def _timeout(self, run: _Run, killed: bool) -> Outcome:
        text = f"the step did not finish within its timeout of {run.timeout:g}s; "
        if killed:
            text += (
                f"the {self.runtime} child (pid {self.pid}) did not stop it within "
                f"{self.cancel_grace:g}s of the cancel and was killed"
            )
        else:
            text += f"it was canceled (the {self.runtime} child pid {self.pid} stays in use)"
        return Outcome(False, error=error_body("Timeout", text))

    def _on_cancel_ignored(self, run: _Run) -> None:
        """The child did not answer a cancel within the grace: kill it."""
        run.grace = None
        if run.id not in self.running:
            return
        others = len(self.running) - 1
        what = "did not stop at its timeout" if run.timed_out else "ignored a cancel"
        if self.failure is None:
            self.failure = ChildFailed(
                "ChildCrashed",
                f"the {self.runtime} child process (pid {self.pid}) was killed because another "
                f"invocation on it {what} ({others} invocation(s) in flight were lost)",
            )
        if run.timed_out:
            self._complete(run, self._timeout(run, killed=True))
        else:
            self._complete(run, ChildFailed("Canceled", "the invocation was canceled").outcome())
        self._background(self.kill())

    async def _settle_output(self, run: _Run) -> None:
        """Let output the child wrote before its answer reach the host first."""
        self._settling = run
        try:
            for _ in range(50):
                if not any(_pending_bytes(fd) for fd in self._out_fds):
                    return
                await asyncio.sleep(0)
        finally:
            self._settling = None
