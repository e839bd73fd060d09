"""Launching Node.js children: ``node [--import tsx] <flowtide-worker>/src/child.mjs``.

The SDK (npm ``flowtide-worker``) is found, in order: ``$FLOWTIDE_NODE_SDK`` (a directory),
the copy bundled in the wheel (``flowtide/_sdks/node``, which speaks this package's protocol
version), ``sdks/node`` of the source checkout this package was installed from (editable
installs), then ``node_modules/flowtide-worker`` under the app's directory. ``.ts`` handlers
need a loader: the pool for them starts Node with ``--import $FLOWTIDE_NODE_TS_LOADER``
(default ``tsx``, installed in the app).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["find_sdk", "node_argv", "node_binary"]


def node_binary() -> str:
    return os.environ.get("FLOWTIDE_NODE") or shutil.which("node") or "node"


def find_sdk(cwd: str | None = None) -> Path:
    candidates = []
    if os.environ.get("FLOWTIDE_NODE_SDK"):
        candidates.append(Path(os.environ["FLOWTIDE_NODE_SDK"]))
    package = Path(__file__).resolve().parents[1]
    candidates.append(package / "_sdks" / "node")
    candidates.append(package.parent / "sdks" / "node")
    candidates.append(Path(cwd or os.getcwd()) / "node_modules" / "flowtide-worker")
    for base in candidates:
        if (base / "src" / "child.mjs").is_file():
            return base
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"the Node SDK flowtide-worker was not found (tried {tried})")


def node_argv(ts: bool = False, cwd: str | None = None) -> list[str]:
    argv = [node_binary()]
    if ts:
        argv += ["--import", os.environ.get("FLOWTIDE_NODE_TS_LOADER", "tsx")]
    return [*argv, str(find_sdk(cwd) / "src" / "child.mjs")]
