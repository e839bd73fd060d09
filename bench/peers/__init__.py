"""Peer implementations of the flowtide benchmark workloads.

Each peer module (``huey_peer``, ``dbos_peer``) exposes ``NAME`` and
``run(workload, n) -> dict | None`` for the workloads in ``WORKLOADS``. Every run uses a
local SQLite file in a temporary directory that the run creates and removes, and any
worker child process is stopped by pid before ``run`` returns.
"""

from __future__ import annotations

from ._common import DEFAULT_N, WORKLOADS, PeerResult, WorkloadTimeout

__all__ = ["DEFAULT_N", "WORKLOADS", "PeerResult", "WorkloadTimeout"]
