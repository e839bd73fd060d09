"""One child process speaking the protocol: spawn, handshake, invoke, watchdog, kill, reap.

The protocol runs on two extra pipes (parent -> child, child -> parent) whose fd numbers the
child finds in its environment, so the child's stdout and stderr stay free: they are read line
by line and handed to the running invocation's host as output (log events).

A child runs up to ``capacity`` invocations at once (``max_inflight``, when its hello names the
``concurrent`` capability; otherwise one). Every message is tagged with an invocation id; frames
to the child are batched into one write per event-loop iteration. Fault semantics:

- the child exits, is killed, stops sending heartbeats or breaks the protocol: every invocation
  in flight on it fails (``ChildCrashed``, ``ChildUnresponsive``, ``ProtocolError``...), each one
  retried per its own policy, and the child is never reused;
- one invocation passes its deadline: the parent sends ``cancel`` for it and waits
  ``cancel_grace`` seconds for the child's answer; the attempt fails with ``Timeout`` either way,
  but only a child that does not answer in time is killed (failing the others in flight).
"""

from __future__ import annotations

from flowtide.runtimes._process import _Process
from flowtide.runtimes._types import ChildFailed, Host, Invocation, Outcome

__all__ = ["Child", "ChildFailed", "Host", "Invocation", "Outcome"]


class Child(_Process):
    """A child process; runs up to :attr:`capacity` invocations at once.

    Its parts, each a base class: ``_ChildState`` (configuration and state), ``_Invocations``
    (invocations in flight, deadlines, cancels), ``_Channel`` (protocol frames, heartbeat
    watchdog) and ``_Process`` (spawn, handshake, output, kill, reap).
    """
