"""Configuration: ``flowtide.toml``, ``[tool.flowtide]`` in ``pyproject.toml``, ``FLOWTIDE_*`` env.

Every problem is a :class:`ConfigError` whose message is one line naming the key or URL.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flowtide._util.durations import parse_duration

__all__ = ["Config", "ConfigError", "load_config"]

BACKEND_SCHEMES = ("memory", "sqlite", "redis", "rediss", "postgresql", "postgres")
DEFAULT_BACKEND = "sqlite:///.flowtide/flowtide.db"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the user."""


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""
    api_token: str = ""


@dataclass(slots=True)
class WorkerConfig:
    concurrency: int = 10
    queues: list[str] = field(default_factory=lambda: ["*"])
    lease: float = 30.0
    shutdown_grace: float = 30.0
    poll_interval: float = 0.05
    stats_interval: float = 10.0  # console line with queue depth and jobs/s; 0 disables


@dataclass(slots=True)
class FlowConfig:
    step_timeout: float = 300.0
    stall_timeout: float | None = None  # None: "auto", derived from the flow's graph


@dataclass(slots=True)
class StateConfig:
    cleanup: str = "never"
    ttl: float = 7 * 86400.0


@dataclass(slots=True)
class RuntimesConfig:
    """Child-process pools of a worker (``runtime="python-process"`` / ``"node"``)."""

    python_process_pool: int = 0  # children per worker; 0: min(8, max(2, CPUs))
    node_pool: int = 0
    python_process_max_inflight: int = 1  # invocations at once per child
    node_max_inflight: int = 32
    max_jobs_per_child: int | None = None  # recycle after N jobs; 0: never; None: 1,000 / 10,000
    max_memory_mb: int = 512  # recycle a child above this resident memory; 0: never
    cancel_grace: float = 1.0  # a timed-out invocation's child is killed if it ignores the cancel


@dataclass(slots=True)
class Config:
    app: list[str] = field(default_factory=lambda: ["functions"])
    backend: str = DEFAULT_BACKEND
    root: Path = field(default_factory=Path.cwd)
    server: ServerConfig = field(default_factory=ServerConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    state: StateConfig = field(default_factory=StateConfig)
    runtimes: RuntimesConfig = field(default_factory=RuntimesConfig)

    @property
    def base_url(self) -> str:
        return self.server.base_url or f"http://{self.server.host}:{self.server.port}"


_SECTIONS: dict[str, dict[str, type]] = {
    "server": {"host": str, "port": int, "base_url": str, "api_token": str},
    "worker": {
        "concurrency": int,
        "queues": list,
        "lease": float,
        "shutdown_grace": float,
        "poll_interval": float,
        "stats_interval": float,
    },
    "flow": {"step_timeout": float, "stall_timeout": float},
    "state": {"cleanup": str, "ttl": float},
    "runtimes": {
        "python_process_pool": int,
        "node_pool": int,
        "python_process_max_inflight": int,
        "node_max_inflight": int,
        "max_jobs_per_child": int,
        "max_memory_mb": int,
        "cancel_grace": float,
    },
}
_TOP: dict[str, type] = {"app": list, "backend": str, "queue": str, "store": str, "stream": str}
_DURATIONS = {
    "lease",
    "shutdown_grace",
    "poll_interval",
    "stats_interval",
    "step_timeout",
    "stall_timeout",
    "ttl",
    "cancel_grace",
}


def _coerce(key: str, kind: type, value: Any) -> Any:
    name = key.rsplit(".", 1)[-1]
    if name in _DURATIONS:
        if name == "stall_timeout" and value == "auto":
            return None
        if name == "stats_interval" and value in ("0", "off"):
            return 0.0
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"config key {key}: {exc}") from None
    if kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ConfigError(f"config key {key}: expected a list of strings, got {value!r}")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key}: expected an integer, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"config key {key}: expected a string, got {value!r}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        return dict(tool.get("flowtide", {})) if isinstance(tool, dict) else {}
    return data


def _find_file(root: Path) -> Path | None:
    toml = root / "flowtide.toml"
    if toml.is_file():
        return toml
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and "tool" in _read_file_raw(pyproject):
        return pyproject
    return None


def _read_file_raw(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _apply(config: Config, data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            section = getattr(config, key)
            for sub, subvalue in value.items():
                kind = _SECTIONS[key].get(sub)
                if kind is None:
                    raise ConfigError(f"{where}: unknown config key {key}.{sub}")
                setattr(section, sub, _coerce(f"{key}.{sub}", kind, subvalue))
        elif key in _TOP:
            if key in ("queue", "store", "stream"):
                _check_facet(key, value, data.get("backend", config.backend), where)
                continue
            setattr(config, key, _coerce(key, _TOP[key], value))
        else:
            raise ConfigError(f"{where}: unknown config key {key}")


def _check_facet(key: str, value: Any, backend: Any, where: str) -> None:
    """Per-facet overrides are reserved: today one backend serves queue, store and stream."""
    if value != backend:
        raise ConfigError(
            f"{where}: config key {key}: a separate {key} backend is not supported in this "
            f"version; set `backend` instead (or make {key} equal to it)"
        )


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("FLOWTIDE_"):
            continue
        rest = name[len("FLOWTIDE_") :].lower()
        if rest in _TOP:
            out[rest] = value
            continue
        section, _, key = rest.partition("_")
        if section in _SECTIONS and key:
            out.setdefault(section, {})[key] = value
        elif section in ("test", "bench"):
            continue  # reserved for the project's own test and benchmark harnesses
        else:
            raise ConfigError(f"environment variable {name}: unknown config key")
    return out


def check_backend_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in BACKEND_SCHEMES:
        raise ConfigError(
            f"backend URL {url!r}: unknown scheme {parts.scheme!r}; "
            "use memory://, sqlite:///PATH, redis://HOST:PORT/DB or postgresql://USER@HOST/DB"
        )
    if parts.scheme == "sqlite" and not (parts.path or parts.netloc):
        raise ConfigError(f"backend URL {url!r}: missing the database path (sqlite:///PATH)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ConfigError(f"backend URL {url!r}: {exc}") from None


def _check_runtimes(runtimes: RuntimesConfig) -> None:
    minimum = {"python_process_max_inflight": 1, "node_max_inflight": 1}
    for key in _SECTIONS["runtimes"]:
        value = getattr(runtimes, key)
        least = minimum.get(key, 0)
        if value is not None and value < least:
            raise ConfigError(f"config key runtimes.{key}: must be at least {least}, got {value}")


def load_config(
    path: str | Path | None = None,
    *,
    root: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read configuration: the file (explicit, flowtide.toml or pyproject), env, overrides."""
    base = Path(root) if root is not None else Path.cwd()
    config = Config(root=base)
    file = Path(path) if path is not None else _find_file(base)
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    if file is not None:
        config.root = file.resolve().parent
        _apply(config, _read_file(file), str(file))
    _apply(config, _env_overrides(os.environ if environ is None else environ), "environment")
    if overrides:
        _apply(config, overrides, "arguments")
    check_backend_url(config.backend)
    if config.worker.concurrency < 1:
        raise ConfigError(
            f"config key worker.concurrency: must be at least 1, got {config.worker.concurrency}"
        )
    _check_runtimes(config.runtimes)
    if config.state.cleanup not in ("never", "on-complete", "ttl"):
        raise ConfigError(
            f"config key state.cleanup: {config.state.cleanup!r} is not one of "
            "never, on-complete, ttl"
        )
    return config
