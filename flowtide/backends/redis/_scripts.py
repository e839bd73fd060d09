"""The Lua scripts of the Redis backend, loaded from ``lua/*.lua`` with the shared helpers."""

from __future__ import annotations

from importlib import resources

__all__ = ["SCRIPT_NAMES", "load_scripts"]

SCRIPT_NAMES = (
    "append",
    "claim",
    "claim_timers",
    "commit",
    "commit_claim",
    "delete_job",
    "enqueue",
    "export_records",
    "heartbeat",
    "import_jobs",
    "import_run",
    "list_jobs",
    "list_runs",
    "records",
    "release",
    "sweep",
)


# The function files (``lua/_*.lua``) a script uses, after ``_lib.lua``.
PARTS: dict[str, tuple[str, ...]] = {
    "claim": ("_claim",),
    "commit": ("_records", "_commit"),
    "commit_claim": ("_records", "_commit", "_claim"),
    "export_records": ("_records",),
    "import_jobs": ("_import",),
    "import_run": ("_records", "_commit", "_import"),
    "records": ("_records",),
    "sweep": ("_records",),
}


def load_scripts() -> dict[str, str]:
    """name -> source: ``_lib.lua``, the function files it uses, then its own file."""
    folder = resources.files("flowtide.backends.redis").joinpath("lua")

    def read(name: str) -> str:
        return folder.joinpath(f"{name}.lua").read_text()

    return {
        name: "\n".join([read("_lib"), *(read(p) for p in PARTS.get(name, ())), read(name)])
        for name in SCRIPT_NAMES
    }
