"""The Lua scripts of the Redis backend, loaded from ``lua/*.lua`` with the shared helpers."""

from __future__ import annotations

from importlib import resources

__all__ = ["SCRIPT_NAMES", "load_scripts"]

SCRIPT_NAMES = (
    "append",
    "claim",
    "claim_timers",
    "commit",
    "delete_job",
    "enqueue",
    "heartbeat",
    "list_jobs",
    "list_runs",
    "release",
    "sweep",
)


def load_scripts() -> dict[str, str]:
    """name -> source: each script is ``_lib.lua`` followed by its own file."""
    folder = resources.files("flowtide.backends.redis").joinpath("lua")
    lib = folder.joinpath("_lib.lua").read_text()
    return {name: lib + "\n" + folder.joinpath(f"{name}.lua").read_text() for name in SCRIPT_NAMES}
